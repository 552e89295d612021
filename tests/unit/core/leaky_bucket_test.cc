#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(LeakyBucket, AdmittedRequestsAreDelayedToLeaveAtTheLeakRate) {
  Harness h;
  const auto p = Policy::leaky_bucket(3, 1).value();
  EXPECT_EQ(h.check(p).delay, 0s);  // an empty meter: go now
  EXPECT_EQ(h.check(p).delay, 1s);  // one ahead
  EXPECT_EQ(h.check(p).delay, 2s);  // two ahead
  const Decision full = h.check(p);
  EXPECT_FALSE(full.allowed);
  EXPECT_EQ(full.retry_after, 1s);
  EXPECT_EQ(full.delay, 0s);

  h.advance(1s);
  const Decision next = h.check(p);
  EXPECT_TRUE(next.allowed);
  EXPECT_EQ(next.delay, 2s);
}

TEST(LeakyBucket, LevelDrainsContinuously) {
  Harness h;
  const auto p = Policy::leaky_bucket(10, 4).value();  // 250 ms per unit
  EXPECT_TRUE(h.check(p, 10).allowed);
  h.advance(600ms);  // 2.4 units leaked
  EXPECT_EQ(h.check(p, 0).remaining, 2u);
  const Decision d = h.check(p, 2);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.delay, 1900ms);  // 7.6 units ahead at 4/s
  EXPECT_EQ(d.reset_after, 2400ms);
  EXPECT_EQ(h.check(p, 1).retry_after, 150ms);  // 0.4 units short
}

TEST(LeakyBucket, OtherAlgorithmsNeverDelay) {
  Harness h;
  const auto p = Policy::token_bucket(3, 1).value();
  h.check(p);
  EXPECT_EQ(h.check(p).delay, 0s);
}

TEST(LeakyBucket, CostAboveCapacityIsNeverAllowed) {
  Harness h;
  const auto p = Policy::leaky_bucket(5, 1).value();
  const Decision d = h.check(p, 6);
  EXPECT_EQ(d.reason, DenyReason::kCostExceedsCapacity);
  EXPECT_EQ(d.retry_after, kNever);
}

}  // namespace
}  // namespace floodgate::testing
