#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(FixedWindow, CountsPerEpochAlignedWindow) {
  Harness h;
  const auto p = Policy::fixed_window(5, 1min).value();
  h.advance(15s);  // windows start on the minute, whenever the first request comes
  const Decision first = h.check(p);
  EXPECT_EQ(first.remaining, 4u);
  EXPECT_EQ(first.reset_after, 45s);
  EXPECT_EQ(h.spend(p, 10), 4);
  const Decision denied = h.check(p);
  EXPECT_EQ(denied.reason, DenyReason::kLimited);
  EXPECT_EQ(denied.retry_after, 45s);
  h.advance(44'999'999us);
  EXPECT_FALSE(h.check(p).allowed);
  h.advance(1us);
  EXPECT_EQ(h.spend(p, 10), 5);
}

TEST(FixedWindow, BoundaryBurstAdmitsTwiceTheLimitWithinMicroseconds) {
  // The known weakness this algorithm trades for its two words of state.
  Harness h;
  const auto p = Policy::fixed_window(100, 1min).value();
  h.advance(1min - 1us);
  EXPECT_EQ(h.spend(p, 100), 100);
  h.advance(1us);
  EXPECT_EQ(h.spend(p, 100), 100);  // 200 within one microsecond
}

TEST(FixedWindow, CostZeroPeeksAndCostAboveLimitIsNever) {
  Harness h;
  const auto p = Policy::fixed_window(3, 1s).value();
  h.check(p, 2);
  EXPECT_EQ(h.check(p, 0).remaining, 1u);
  EXPECT_EQ(h.check(p, 0).remaining, 1u);
  const Decision d = h.check(p, 4);
  EXPECT_EQ(d.reason, DenyReason::kCostExceedsCapacity);
  EXPECT_EQ(d.retry_after, kNever);
  EXPECT_TRUE(h.check(p, 1).allowed);
}

TEST(FixedWindow, ClockSteppingBackIntoAnEarlierWindowDoesNotReopenIt) {
  Harness h;
  const auto p = Policy::fixed_window(2, 1min).value();
  h.advance(2min);
  EXPECT_EQ(h.spend(p, 2), 2);
  h.advance(-90s);  // back into the previous minute
  const Decision d = h.check(p);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 150s);  // until the newer window (2:00-3:00) ends, on this clock
  h.advance(90s);
  EXPECT_EQ(h.spend(p, 1), 0);
  h.advance(60s);
  EXPECT_EQ(h.spend(p, 3), 2);
}

TEST(FixedWindow, CostIsCounted) {
  Harness h;
  const auto p = Policy::fixed_window(10, 1h).value();
  EXPECT_TRUE(h.check(p, 7).allowed);
  EXPECT_FALSE(h.check(p, 4).allowed);
  EXPECT_TRUE(h.check(p, 3).allowed);
  EXPECT_EQ(h.check(p, 0).remaining, 0u);
}

TEST(FixedWindow, ACountAboveALoweredLimitLeavesNothingRemaining) {
  Harness h;
  const auto before = Policy::fixed_window(10, 1h).value();
  const auto after = Policy::fixed_window(3, 1h).value();  // the rule reloaded with a lower limit
  EXPECT_EQ(h.spend(before, 8), 8);
  const Decision d = h.check(after);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.remaining, 0u);  // not 3 - 8 wrapped around
  EXPECT_EQ(d.retry_after, 1h);
  EXPECT_EQ(h.check(after, 0).remaining, 0u);
  h.advance(1h);
  EXPECT_EQ(h.check(after).remaining, 2u);
}

}  // namespace
}  // namespace floodgate::testing
