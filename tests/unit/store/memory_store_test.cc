#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(MemoryStore, ForgetsAKeyOnceItsStateEqualsAFreshOne) {
  Harness h;
  const auto p = Policy::fixed_window(5, 1s).value();
  h.check(p, 1, "a");
  h.check(p, 1, "b");
  EXPECT_EQ(h.store.stats().keys, 2u);
  h.advance(999ms);
  EXPECT_EQ(h.store.sweep(), 0u);  // the window is not over yet
  h.advance(1ms);
  EXPECT_EQ(h.store.sweep(), 2u);
  EXPECT_EQ(h.store.stats().keys, 0u);
  EXPECT_EQ(h.store.stats().evicted_fresh, 2u);
}

TEST(MemoryStore, ResetForgetsTheKeyUnderEveryAlgorithmAndNothingElse) {
  Harness h;
  const auto window = Policy::fixed_window(1, 60s).value();
  const auto log = Policy::sliding_window_log(1, 60s).value();
  for (const char* key : {"gone", "kept"}) {
    EXPECT_TRUE(h.check(window, 1, key).allowed);
    EXPECT_TRUE(h.check(log, 1, key).allowed);
  }
  EXPECT_EQ(h.store.erase("gone"), 2u);
  StoreStatus status = StoreStatus::kUnavailable;
  h.store.reset("kept-not", [&](StoreStatus s) { status = s; });  // inline, and nothing to drop
  EXPECT_EQ(status, StoreStatus::kOk);
  EXPECT_TRUE(h.check(window, 1, "gone").allowed);
  EXPECT_TRUE(h.check(log, 1, "gone").allowed);
  EXPECT_FALSE(h.check(window, 1, "kept").allowed);
  EXPECT_FALSE(h.check(log, 1, "kept").allowed);
}

TEST(MemoryStore, SweepKeepsKeysThatStillHoldState) {
  Harness h;
  const auto bucket = Policy::token_bucket(10, 1).value();
  const auto log = Policy::sliding_window_log(10, 1min).value();
  h.check(bucket, 5, "bucket");
  h.check(log, 1, "log");
  h.advance(4s);
  EXPECT_EQ(h.store.sweep(), 0u);
  EXPECT_EQ(h.store.stats().keys, 2u);
  h.advance(1s);  // the bucket is full again; the log entry still counts
  EXPECT_EQ(h.store.sweep(), 1u);
  h.advance(55s);
  EXPECT_EQ(h.store.sweep(), 1u);
  EXPECT_EQ(h.store.stats().keys, 0u);
}

TEST(MemoryStore, NeverHoldsMoreThanMaxKeys) {
  ManualClock clock{kStart};
  MemoryStore store{clock, {.max_keys = 1000, .shards = 4}};
  const auto p = Policy::token_bucket(10, 0).value();  // never refills: never fresh again
  for (int i = 0; i < 20'000; ++i) store.check("user:" + std::to_string(i), p);
  const MemoryStoreStats s = store.stats();
  EXPECT_LE(s.keys, 1000u);
  EXPECT_GT(s.keys, 800u);
  EXPECT_EQ(s.keys + s.evicted_for_capacity, 20'000u);
}

TEST(MemoryStore, UnderPressureEvictsTheKeysClosestToFreshFirst) {
  ManualClock clock{kStart};
  MemoryStore store{clock, {.max_keys = 2000, .shards = 2}};
  const auto day = Policy::fixed_window(3, std::chrono::hours(24)).value();
  const auto second = Policy::fixed_window(3, 1s).value();
  for (int i = 0; i < 500; ++i) store.check("daily:" + std::to_string(i), day, 3);
  for (int i = 0; i < 10'000; ++i) store.check("burst:" + std::to_string(i), second);
  EXPECT_GT(store.stats().evicted_for_capacity, 0u);
  int still_limited = 0;
  for (int i = 0; i < 500; ++i) {
    still_limited += store.check("daily:" + std::to_string(i), day).allowed ? 0 : 1;
  }
  EXPECT_EQ(still_limited, 500);  // the day-long limits were never the ones evicted
}

TEST(MemoryStore, PeeksAndRefusalsStoreNothing) {
  Harness h;
  h.check(Policy::token_bucket(3, 1).value(), 0, "peek");
  h.check(Policy::token_bucket(3, 1).value(), 4, "too-big");
  h.check(Policy::sliding_window_log(3, 1s).value(), 0, "log-peek");
  h.check(Policy::sliding_window_log(3, 1s).value(), 9, "log-too-big");
  EXPECT_EQ(h.store.stats().keys, 0u);
}

struct CountingCompletion final : Completion {
  int calls = 0;
  std::thread::id thread;
  void complete() override {
    ++calls;
    thread = std::this_thread::get_id();
  }
};

TEST(MemoryStore, BatchCompletesInlineOnceWithEveryOutcome) {
  Harness h;
  const auto small = Policy::fixed_window(1, 1min).value();
  const auto big = Policy::fixed_window(100, 1min).value();
  const std::vector<CheckOp> ops = {{"a", &small, 1}, {"a", &small, 1}, {"b", &big, 7}};
  std::vector<Outcome> outcomes(ops.size());
  CountingCompletion done;
  h.store.check(ops, outcomes, done);
  EXPECT_EQ(done.calls, 1);
  EXPECT_EQ(done.thread, std::this_thread::get_id());
  EXPECT_TRUE(outcomes[0].decision.allowed);
  EXPECT_FALSE(outcomes[1].decision.allowed);
  EXPECT_EQ(outcomes[2].decision.remaining, 93u);
  for (const Outcome& o : outcomes) EXPECT_EQ(o.status, StoreStatus::kOk);
}

}  // namespace
}  // namespace floodgate::testing
