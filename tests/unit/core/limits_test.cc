// The parameter maxima, held for simulated decades: no overflow (UBSan checks every step in the
// asan preset), no drift, and the same answers at the end as at the start.
#include <vector>

#include <gtest/gtest.h>

#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

constexpr std::int64_t kMax = 4'294'967'295;
const Micros kYear = std::chrono::hours(24 * 365);

std::vector<Policy> extreme_policies() {
  std::vector<Policy> out;
  // Refill times of 1 s, 49.7 days and 364 days: the fastest rate and the slowest allowed.
  for (double rate : {4294967295.0, 1000.0, 4294967295.0 / (364 * 86400.0)}) {
    out.push_back(Policy::token_bucket(kMax, rate).value());
    out.push_back(Policy::leaky_bucket(kMax, rate).value());
  }
  out.push_back(Policy::token_bucket(kMax, 0).value());
  out.push_back(Policy::token_bucket(1, 4294967295.0).value());
  out.push_back(Policy::gcra(kMax, kMaxWindow).value());
  out.push_back(Policy::gcra(1, kMaxWindow).value());
  out.push_back(Policy::gcra(kMax, kMinWindow).value());
  out.push_back(Policy::gcra(1, kMinWindow, kMax).value());
  for (Micros window : {kMinWindow, kMaxWindow}) {
    out.push_back(Policy::fixed_window(kMax, window).value());
    out.push_back(Policy::sliding_window_counter(kMax, window).value());
    out.push_back(Policy::sliding_window_log(100'000, window).value());
  }
  return out;
}

TEST(Limits, MaximalParametersSurviveDecadesOfUptime) {
  for (const Policy& p : extreme_policies()) {
    SCOPED_TRACE(std::string(to_string(p.algorithm())) + " limit " + std::to_string(p.limit()) +
                 " rate " + std::to_string(p.rate()) + " window " +
                 std::to_string(p.window().count()));
    Harness h;
    const std::uint64_t big = p.limit();
    // Drain everything, then check the decision fields are sane.
    Decision d = h.check(p, big);
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 0u);
    d = h.check(p, big);
    ASSERT_FALSE(d.allowed);
    EXPECT_GT(d.retry_after.count(), 0);
    EXPECT_EQ(h.check(p, big + 1).retry_after, kNever);

    // Forty years in steps of a little over two years (so even a year-long sliding window has
    // rolled out); the key must come back to full each time, except a bucket that never refills.
    for (int year = 0; year < 40; year += 2) {
      h.advance(2 * kYear + std::chrono::hours(7));
      const Decision peek = h.check(p, 0);
      if (p.algorithm() == Algorithm::kTokenBucket && p.rate() == 0) {
        EXPECT_EQ(peek.remaining, 0u);
        EXPECT_EQ(peek.reset_after, kNever);
        continue;
      }
      ASSERT_EQ(peek.remaining, big) << "year " << year;
      ASSERT_TRUE(h.check(p, big).allowed) << "year " << year;
      ASSERT_FALSE(h.check(p, 1).allowed) << "year " << year;
    }
  }
}

TEST(Limits, ResultsStayExactFarFromTheEpoch) {
  // Year 2500: the microsecond clock is ~1.7e16, beyond a double's exact integers; ours is int64.
  ManualClock clock{std::chrono::hours(24) * 193'000};
  MemoryStore store{clock};
  const auto p = Policy::token_bucket(10, 1000).value();
  EXPECT_TRUE(store.check("k", p, 10).allowed);
  clock.advance(Micros{1});
  EXPECT_FALSE(store.check("k", p, 1).allowed);
  EXPECT_EQ(store.check("k", p, 1).retry_after, Micros{999});
}

}  // namespace
}  // namespace floodgate::testing

namespace floodgate::testing {
namespace {

// A rule's parameters may change on reload while keys hold state written under the old ones. The
// state must stay meaningful (and arithmetic defined): counts carry over, nothing overflows.
TEST(PolicyChange, AWindowThatChangesLengthCarriesItsCount) {
  Harness h;
  h.advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(h.spend(Policy::fixed_window(5, std::chrono::milliseconds(1)).value(), 3), 3);
  const auto hours = Policy::fixed_window(5, std::chrono::hours(5)).value();
  const Decision d = h.check(hours, 0);
  EXPECT_EQ(d.remaining, 2u);  // the 3 already admitted still count
  EXPECT_GT(d.reset_after, Micros{0});
  EXPECT_LE(d.reset_after, std::chrono::hours(5));
  EXPECT_EQ(h.spend(hours, 3), 2);
}

TEST(PolicyChange, ASlidingCounterThatChangesLengthCarriesItsCounts) {
  Harness h;
  h.advance(std::chrono::milliseconds(1500));
  EXPECT_EQ(h.spend(Policy::sliding_window_counter(4, std::chrono::milliseconds(7)).value(), 4), 4);
  const auto hour = Policy::sliding_window_counter(10, std::chrono::hours(1)).value();
  EXPECT_EQ(h.check(hour, 0).remaining, 6u);
  EXPECT_EQ(h.spend(hour, 10), 6);
}

TEST(PolicyChange, ABucketThatShrinksStaysUsedUp) {
  Harness h;
  EXPECT_TRUE(h.check(Policy::token_bucket(1'000'000, 10).value(), 1'000'000).allowed);
  const auto small = Policy::token_bucket(10, 1).value();
  const Decision d = h.check(small, 1);
  EXPECT_FALSE(d.allowed);
  // About empty (the old debt, in the old policy's ticks, lands at ~99.98% of the new range).
  EXPECT_GT(d.retry_after, std::chrono::milliseconds(990));
  EXPECT_LE(d.retry_after, std::chrono::seconds(1));
  h.advance(std::chrono::seconds(10));
  EXPECT_EQ(h.spend(small, 11), 10);
}

}  // namespace
}  // namespace floodgate::testing
