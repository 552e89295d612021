// rls::Service under many threads (run under ThreadSanitizer by `make tsan`): exact admissions on
// shared counters, the over-limit cache, statistics and config reloads racing with calls.
#include <atomic>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>

#include "floodgate/memory_store.h"
#include "rls/service.h"
#include "unit/rls/parse_config.h"

namespace floodgate::rls {
namespace {

using namespace std::chrono_literals;

const char* kConfig = R"(
domain: edge
descriptors:
  - key: user
    rate_limit: {unit: hour, requests_per_unit: 100}
)";

TEST(RlsServiceConcurrency, ThreadsOnSharedCountersAdmitExactlyTheLimit) {
  ManualClock clock{Micros{1'700'000'000'000'000}};
  MemoryStore store(clock);
  Limiter limiter(store);
  ServiceOptions options;
  options.clock = &clock;
  options.over_limit_cache_entries = 64;  // small: eviction runs under contention too
  Service service(limiter, options, parse_config(kConfig));

  constexpr int kThreads = 8;
  constexpr int kCalls = 1500;
  constexpr int kUsers = 10;
  std::atomic<int> ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        struct Sync final : Call {
          void done() override {}
        } c;
        const std::string user = std::to_string((t + i) % kUsers);
        c.request.domain = "edge";
        c.request.descriptors.push_back(Descriptor{{{"user", user}}});
        service.should_rate_limit(c);
        if (!c.error && c.response.overall_code == Code::kOk) ++ok;
      }
    });
  }
  // Metrics rendering and reloads (of the same limits) race with the calls.
  std::thread observer([&] {
    while (!stop.load()) {
      std::string out;
      service.append_metrics(out);
      service.set_config(parse_config(kConfig));
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  observer.join();

  EXPECT_EQ(ok.load(), kUsers * 100);
  std::string metrics;
  service.append_metrics(metrics);
  EXPECT_NE(
      metrics.find(R"(floodgate_rls_total_hits_total{domain="edge",descriptor="edge.user"} )" +
                   std::to_string(kThreads * kCalls)),
      std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace floodgate::rls
