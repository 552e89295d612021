#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(TokenBucket, StartsFullThenRefillsAtTheRate) {
  Harness h;
  const auto p = Policy::token_bucket(10, 0.5).value();
  EXPECT_EQ(h.spend(p, 10), 10);
  const Decision denied = h.check(p);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reason, DenyReason::kLimited);
  EXPECT_EQ(denied.remaining, 0u);
  EXPECT_EQ(denied.retry_after, 2s);   // one token at 0.5/s
  EXPECT_EQ(denied.reset_after, 20s);  // ten tokens

  h.advance(1999ms);
  EXPECT_FALSE(h.check(p).allowed);
  h.advance(1ms);
  EXPECT_TRUE(h.check(p).allowed);
  EXPECT_FALSE(h.check(p).allowed);

  h.advance(1h);  // refill stops at capacity
  EXPECT_EQ(h.spend(p, 11), 10);
}

TEST(TokenBucket, AllowedDecisionCountsDown) {
  Harness h;
  const auto p = Policy::token_bucket(3, 1).value();
  Decision d = h.check(p);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.limit, 3u);
  EXPECT_EQ(d.remaining, 2u);
  EXPECT_EQ(d.retry_after, 0us);
  EXPECT_EQ(d.reset_after, 1s);
  d = h.check(p, 2);
  EXPECT_EQ(d.remaining, 0u);
  EXPECT_EQ(d.reset_after, 3s);
}

TEST(TokenBucket, FastFractionalRate) {
  Harness h;
  const auto p = Policy::token_bucket(5, 1000).value();
  EXPECT_EQ(h.spend(p, 6), 5);
  EXPECT_EQ(h.check(p).retry_after, 1ms);
  h.advance(999us);
  EXPECT_FALSE(h.check(p).allowed);
  h.advance(1us);
  EXPECT_TRUE(h.check(p).allowed);
  h.advance(2500us);  // 2.5 tokens: two whole ones
  EXPECT_EQ(h.check(p, 0).remaining, 2u);
  EXPECT_EQ(h.spend(p, 3), 2);
  EXPECT_EQ(h.check(p).retry_after, 500us);  // the half token already earned counts
}

TEST(TokenBucket, SlowFractionalRate) {
  Harness h;
  const auto p = Policy::token_bucket(2, 1.0 / 3).value();
  EXPECT_EQ(h.spend(p, 2), 2);
  EXPECT_EQ(h.check(p).retry_after, 3s);
  EXPECT_EQ(h.check(p, 2).retry_after, 6s);
  h.advance(3s);
  EXPECT_TRUE(h.check(p).allowed);
}

TEST(TokenBucket, CostZeroPeeksWithoutConsuming) {
  Harness h;
  const auto p = Policy::token_bucket(4, 1).value();
  for (int i = 0; i < 5; ++i) {
    const Decision peek = h.check(p, 0);
    EXPECT_TRUE(peek.allowed);
    EXPECT_EQ(peek.remaining, 4u);
    EXPECT_EQ(peek.reset_after, 0us);
  }
  EXPECT_EQ(h.store.stats().keys, 0u);  // a peek on an unknown key stores nothing
  h.check(p, 4);
  const Decision peek = h.check(p, 0);
  EXPECT_EQ(peek.remaining, 0u);
  EXPECT_EQ(peek.reset_after, 4s);
}

TEST(TokenBucket, CostAboveCapacityIsNeverAllowed) {
  Harness h;
  const auto p = Policy::token_bucket(10, 1).value();
  const Decision d = h.check(p, 11);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, DenyReason::kCostExceedsCapacity);
  EXPECT_EQ(d.retry_after, kNever);
  EXPECT_EQ(d.remaining, 10u);  // and it consumed nothing
  EXPECT_TRUE(h.check(p, 10).allowed);
}

TEST(TokenBucket, ClockSteppingBackwardsCreatesNoTokens) {
  Harness h;
  const auto p = Policy::token_bucket(10, 1).value();
  EXPECT_EQ(h.spend(p, 10), 10);
  h.advance(-1h);
  EXPECT_FALSE(h.check(p).allowed);
  EXPECT_EQ(h.check(p).retry_after, 1h + 1s);  // time counts again from where it was
  h.advance(1h);                               // back at the last time seen: still empty
  EXPECT_FALSE(h.check(p).allowed);
  h.advance(1s);
  EXPECT_EQ(h.spend(p, 2), 1);
}

TEST(TokenBucket, ZeroRefillIsAQuotaThatNeverResets) {
  Harness h;
  const auto p = Policy::token_bucket(3, 0).value();
  EXPECT_EQ(h.check(p, 0).reset_after, 0us);
  EXPECT_EQ(h.spend(p, 2), 2);
  EXPECT_EQ(h.check(p, 0).reset_after, kNever);
  h.advance(std::chrono::hours(24 * 365 * 10));
  const Decision last = h.check(p);
  EXPECT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0u);
  const Decision denied = h.check(p);
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.retry_after, kNever);
  EXPECT_EQ(denied.reset_after, kNever);
}

TEST(TokenBucket, KeysAreIndependent) {
  Harness h;
  const auto p = Policy::token_bucket(1, 1).value();
  EXPECT_TRUE(h.check(p, 1, "alice").allowed);
  EXPECT_FALSE(h.check(p, 1, "alice").allowed);
  EXPECT_TRUE(h.check(p, 1, "bob").allowed);
}

TEST(TokenBucket, SameKeyUnderAnotherAlgorithmHasItsOwnState) {
  Harness h;
  const auto bucket = Policy::token_bucket(1, 1).value();
  const auto window = Policy::fixed_window(1, 1min).value();
  EXPECT_TRUE(h.check(bucket).allowed);
  EXPECT_TRUE(h.check(window).allowed);
  EXPECT_FALSE(h.check(bucket).allowed);
}

}  // namespace
}  // namespace floodgate::testing
