#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(Gcra, FreshKeyAdmitsExactlyTheBurstAtOnce) {
  Harness h;
  const auto p = Policy::gcra(10, 1s).value();  // burst defaults to the limit
  EXPECT_EQ(h.spend(p, 20), 10);                // not burst + 1 as redis-cell would
}

TEST(Gcra, ExplicitBurstBelowTheLimit) {
  Harness h;
  const auto p = Policy::gcra(10, 1s, 3).value();
  EXPECT_EQ(h.spend(p, 5), 3);
  const Decision d = h.check(p);
  EXPECT_EQ(d.limit, 3u);
  EXPECT_EQ(d.retry_after, 100ms);  // emission interval: 1 s / 10
  EXPECT_EQ(d.reset_after, 300ms);
}

TEST(Gcra, RequestsAreSpacedByTheEmissionInterval) {
  Harness h;
  const auto p = Policy::gcra(60, 1min, 1).value();  // one per second, no burst
  EXPECT_TRUE(h.check(p).allowed);
  h.advance(999ms);
  const Decision early = h.check(p);
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.retry_after, 1ms);
  h.advance(1ms);
  EXPECT_TRUE(h.check(p).allowed);
}

TEST(Gcra, ResetAfterIsTheTheoreticalArrivalTimeMinusNow) {
  Harness h;
  const auto p = Policy::gcra(100, 1min).value();  // 600 ms per request
  EXPECT_EQ(h.check(p).reset_after, 600ms);
  EXPECT_EQ(h.check(p, 4).reset_after, 3s);
  h.advance(1s);
  const Decision peek = h.check(p, 0);
  EXPECT_EQ(peek.reset_after, 2s);
  EXPECT_EQ(peek.remaining, 96u);  // 5 used, 1 s / 600 ms = 1.67 back: 96.67 floors to 96
}

TEST(Gcra, CostAboveBurstIsNeverAllowed) {
  Harness h;
  const auto p = Policy::gcra(100, 1min, 10).value();
  const Decision d = h.check(p, 11);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DenyReason::kCostExceedsCapacity);
  EXPECT_EQ(d.retry_after, kNever);
}

TEST(Gcra, ClockSteppingBackwardsCreatesNoCapacity) {
  Harness h;
  const auto p = Policy::gcra(2, 1s).value();
  EXPECT_EQ(h.spend(p, 2), 2);
  h.advance(-10s);
  EXPECT_EQ(h.spend(p, 3), 0);
  h.advance(10s + 500ms);
  EXPECT_EQ(h.spend(p, 3), 1);
}

}  // namespace
}  // namespace floodgate::testing
