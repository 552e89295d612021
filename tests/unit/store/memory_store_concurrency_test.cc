// Concurrency: run under ThreadSanitizer by the tsan preset (`make tsan`).
#include <atomic>
#include <barrier>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

constexpr int kThreads = 8;

// Runs `body(thread_index)` on kThreads threads released at the same moment.
template <class Body>
void run_together(Body body) {
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
  for (std::thread& th : threads) th.join();
}

class ExactUnderContention : public ::testing::TestWithParam<Policy> {};

TEST_P(ExactUnderContention, ThreadsHammeringOneKeyAdmitExactlyTheLimit) {
  const Policy& p = GetParam();
  ManualClock clock{kStart};
  MemoryStore store{clock};
  std::atomic<std::uint64_t> allowed{0};
  const auto per_thread = static_cast<int>(p.limit()) / kThreads * 3;
  run_together([&](int) {
    std::uint64_t mine = 0;
    for (int i = 0; i < per_thread; ++i) mine += store.check("hot", p).allowed ? 1u : 0u;
    allowed += mine;
  });
  EXPECT_EQ(allowed.load(), p.limit());
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, ExactUnderContention,
                         ::testing::Values(Policy::token_bucket(5000, 0).value(),
                                           Policy::gcra(4000, 1h).value(),
                                           Policy::leaky_bucket(3000, 0.001).value(),
                                           Policy::fixed_window(5000, 1h).value(),
                                           Policy::sliding_window_log(2000, 1h).value(),
                                           Policy::sliding_window_counter(5000, 1h).value()),
                         [](const auto& param_info) {
                           return std::string(to_string(param_info.param.algorithm()));
                         });

TEST(MemoryStoreConcurrency, EvictionRacingWithChecksKeepsHotKeysExact) {
  ManualClock clock{kStart};
  MemoryStore store{clock, {.max_keys = 1'000'000, .shards = 8}};
  const auto hot = Policy::fixed_window(3000, 1h).value();
  const auto churn = Policy::fixed_window(1, std::chrono::milliseconds(1)).value();
  std::atomic<std::uint64_t> hot_allowed{0};
  std::atomic<bool> stop{false};

  std::thread sweeper([&] {
    // Time moves (at most ten minutes in all, well inside the hot key's window) so churn keys go
    // fresh and the sweeps have something to drop.
    for (int step = 0; !stop.load(); ++step) {
      if (step < 12'000) clock.advance(std::chrono::milliseconds(50));
      store.sweep();
    }
  });
  run_together([&](int t) {
    std::uint64_t mine = 0;
    for (int i = 0; i < 4000; ++i) {
      // Short-lived keys that the sweeper and the lazy sweeps keep dropping...
      store.check("churn:" + std::to_string(t) + ":" + std::to_string(i), churn);
      // ...around one long-lived key that must stay exact.
      if (i % 4 == 0) mine += store.check("hot", hot).allowed ? 1u : 0u;
    }
    hot_allowed += mine;
  });
  stop = true;
  sweeper.join();
  EXPECT_EQ(hot_allowed.load(), 3000u);  // 8 threads x 1000 attempts, limit 3000
  // Every churn key has gone fresh by now; only the hot key holds state.
  clock.advance(2s);
  store.sweep();
  EXPECT_EQ(store.stats().keys, 1u);
  EXPECT_FALSE(store.check("hot", hot).allowed);
}

TEST(MemoryStoreConcurrency, CapacityEvictionUnderContentionRespectsMaxKeys) {
  ManualClock clock{kStart};
  MemoryStore store{clock, {.max_keys = 512, .shards = 4}};
  const auto p = Policy::token_bucket(5, 0).value();
  run_together([&](int t) {
    for (int i = 0; i < 3000; ++i) store.check(std::to_string(t) + "/" + std::to_string(i), p);
  });
  const MemoryStoreStats s = store.stats();
  EXPECT_LE(s.keys, 512u);
  EXPECT_EQ(s.keys + s.evicted_for_capacity, static_cast<std::uint64_t>(kThreads) * 3000);
}

}  // namespace
}  // namespace floodgate::testing
