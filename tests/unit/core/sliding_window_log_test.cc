#include <gtest/gtest.h>

#include "core/sliding_window_log.h"
#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(SlidingWindowLog, NoBoundaryBurst) {
  Harness h;
  const auto p = Policy::sliding_window_log(100, 1min).value();
  h.advance(1min - 1us);
  EXPECT_EQ(h.spend(p, 100), 100);
  h.advance(1us);
  EXPECT_EQ(h.spend(p, 100), 0);  // the fixed window would admit 100 more here
  h.advance(1min - 2us);          // the burst still counts 1 us before its minute is over
  EXPECT_EQ(h.spend(p, 100), 0);
  h.advance(1us);  // a full minute after the burst
  EXPECT_EQ(h.spend(p, 101), 100);
}

TEST(SlidingWindowLog, RetryAfterIsWhenEnoughOldEntriesExpire) {
  Harness h;
  const auto p = Policy::sliding_window_log(3, 10s).value();
  h.check(p);  // t = 0
  h.advance(2s);
  h.check(p);  // t = 2
  h.advance(3s);
  h.check(p);  // t = 5
  h.advance(1s);
  const Decision d = h.check(p);  // t = 6
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 4s);  // the t = 0 entry stops counting at t = 10
  EXPECT_EQ(d.reset_after, 9s);  // the t = 5 entry stops counting at t = 15
  EXPECT_EQ(h.check(p, 2).retry_after, 6s);
  h.advance(4s);
  EXPECT_TRUE(h.check(p).allowed);
}

TEST(SlidingWindowLog, CostsAreWeightedEntries) {
  Harness h;
  const auto p = Policy::sliding_window_log(10, 1s).value();
  EXPECT_TRUE(h.check(p, 6).allowed);
  h.advance(500ms);
  EXPECT_TRUE(h.check(p, 4).allowed);
  EXPECT_FALSE(h.check(p, 1).allowed);
  h.advance(500ms);
  const Decision d = h.check(p, 0);
  EXPECT_EQ(d.remaining, 6u);
  EXPECT_EQ(d.reset_after, 500ms);
}

TEST(SlidingWindowLog, StateIsBoundedByTheLimit) {
  const auto p = Policy::sliding_window_log(50, 1h).value();
  core::SlidingLog log;
  Micros now = kStart;
  for (int i = 0; i < 10'000; ++i) {
    core::decide_sliding_log(p, log, now.count(), 1);
    now += 1ms;
  }
  EXPECT_EQ(log.total(), 50u);
  EXPECT_EQ(log.entry_count(), 50u);
  EXPECT_LE(log.entries().capacity(), 50u);
}

TEST(SlidingWindowLog, RequestsInTheSameMicrosecondShareAnEntry) {
  const auto p = Policy::sliding_window_log(1000, 1s).value();
  core::SlidingLog log;
  for (int i = 0; i < 100; ++i) core::decide_sliding_log(p, log, kStart.count(), 1);
  EXPECT_EQ(log.entry_count(), 1u);
  EXPECT_EQ(log.total(), 100u);
}

TEST(SlidingWindowLog, ClockSteppingBackwardsExpiresNothing) {
  Harness h;
  const auto p = Policy::sliding_window_log(2, 10s).value();
  EXPECT_EQ(h.spend(p, 2), 2);
  h.advance(-1h);
  EXPECT_EQ(h.spend(p, 2), 0);
  EXPECT_EQ(h.check(p).retry_after, 1h + 10s);
  h.advance(1h + 10s);
  EXPECT_EQ(h.spend(p, 3), 2);
}

TEST(SlidingWindowLog, CostAboveLimitIsNever) {
  Harness h;
  const auto p = Policy::sliding_window_log(2, 10s).value();
  EXPECT_EQ(h.check(p, 3).retry_after, kNever);
  EXPECT_EQ(h.store.stats().keys, 0u);
}

TEST(SlidingWindowLog, ATotalAboveALoweredLimitLeavesNothingRemaining) {
  Harness h;
  const auto before = Policy::sliding_window_log(10, 1min).value();
  const auto after = Policy::sliding_window_log(3, 1min).value();  // reloaded with a lower limit
  EXPECT_EQ(h.spend(before, 8), 8);
  const Decision d = h.check(after);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);  // not 3 - 8 wrapped around
  EXPECT_EQ(d.retry_after, 1min);
  EXPECT_EQ(h.check(after, 0).remaining, 0u);
  h.advance(1min);
  EXPECT_EQ(h.check(after).remaining, 2u);
}

}  // namespace
}  // namespace floodgate::testing
