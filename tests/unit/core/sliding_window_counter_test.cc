#include <algorithm>
#include <cmath>
#include <deque>
#include <random>

#include <gtest/gtest.h>

#include "core/arith.h"
#include "core/sliding_window_counter.h"
#include "testlib/harness.h"

namespace floodgate::testing {
namespace {

TEST(SlidingWindowCounter, WeightFallsLinearlyInSixteenBitFixedPoint) {
  const auto p = Policy::sliding_window_counter(10, 1min).value();
  EXPECT_EQ(core::sliding_counter_weight(p, 0), 65536);
  EXPECT_EQ(core::sliding_counter_weight(p, Micros(30s).count()), 32768);
  EXPECT_EQ(core::sliding_counter_weight(p, Micros(45s).count()), 16384);
  EXPECT_EQ(core::sliding_counter_weight(p, Micros(1min - 1us).count()),
            1);  // rounded up: never 0 early
}

TEST(SlidingWindowCounter, WeightOfLongWindowsKeepsItsResolution) {
  const auto p = Policy::sliding_window_counter(10, std::chrono::hours(24 * 365)).value();
  EXPECT_GT(p.weight_shift(), 0);
  EXPECT_EQ(core::sliding_counter_weight(p, 0), 65536);
  EXPECT_EQ(core::sliding_counter_weight(p, Micros(std::chrono::hours(24 * 365) / 4).count()),
            49152);
}

TEST(SlidingWindowCounter, PreviousWindowIsWeightedByItsOverlap) {
  Harness h;
  const auto p = Policy::sliding_window_counter(100, 1min).value();
  EXPECT_EQ(h.spend(p, 100), 100);  // all at the start of window 0
  h.advance(1min + 30s);            // halfway through window 1: the estimate is 100 * 0.5
  const Decision peek = h.check(p, 0);
  EXPECT_EQ(peek.remaining, 50u);
  EXPECT_EQ(h.spend(p, 60), 50);
  const Decision denied = h.check(p);
  EXPECT_FALSE(denied.allowed);
  // 50 + 100 * w / 65536 + 1 <= 100 needs w <= 32112, which holds from offset
  // 60 s - floor(32112 * 60 s / 65536) = 30.600586 s: about 0.6 s from now.
  EXPECT_EQ(denied.retry_after, 600'586us);
  // The window holding the last admission stops counting at the end of window 2.
  EXPECT_EQ(denied.reset_after, 1min + 30s);
}

TEST(SlidingWindowCounter, RetryAfterReachesIntoTheNextWindow) {
  Harness h;
  const auto p = Policy::sliding_window_counter(10, 10s).value();
  h.advance(9s);
  EXPECT_EQ(h.spend(p, 10), 10);  // window 0, at 9 s
  const Decision d = h.check(p);
  // At 10 s these 10 become "previous" with weight 1, so one more fits once the weight is at most
  // floor(0.9 * 65536) = 58982: from offset 10 s - floor(58982 * 10 s / 65536) = 1.000062 s.
  EXPECT_EQ(d.retry_after, 2'000'062us);
  h.advance(2'000'061us);
  EXPECT_FALSE(h.check(p).allowed);
  h.advance(1us);
  EXPECT_TRUE(h.check(p).allowed);
}

TEST(SlidingWindowCounter, CostAboveLimitIsNeverAndZeroPeeks) {
  Harness h;
  const auto p = Policy::sliding_window_counter(5, 1s).value();
  EXPECT_EQ(h.check(p, 6).retry_after, kNever);
  EXPECT_EQ(h.check(p, 0).remaining, 5u);
  EXPECT_EQ(h.store.stats().keys, 0u);
}

TEST(SlidingWindowCounter, ClockSteppingBackwardsDoesNotRollWindowsBack) {
  Harness h;
  const auto p = Policy::sliding_window_counter(4, 1min).value();
  h.advance(3min);
  EXPECT_EQ(h.spend(p, 4), 4);
  h.advance(-2min);
  EXPECT_EQ(h.spend(p, 4), 0);
  h.advance(2min + 1min);  // window 4, offset 0: the previous window still weighs fully
  EXPECT_EQ(h.spend(p, 4), 0);
  h.advance(1min);
  EXPECT_EQ(h.spend(p, 5), 4);
}

// Admitted counts in the worst window-long interval, over admission times sorted ascending.
std::uint64_t max_in_any_window(const std::deque<Micros>& admitted, Micros window) {
  std::uint64_t best = 0;
  std::size_t lo = 0;
  for (std::size_t hi = 0; hi < admitted.size(); ++hi) {
    while (admitted[lo] <= admitted[hi] - window) ++lo;
    best = std::max<std::uint64_t>(best, hi - lo + 1);
  }
  return best;
}

TEST(SlidingWindowCounter, RandomTrafficStaysWithinTwiceTheSquareRootOfTheLimit) {
  // The documented bound for traffic that arrives at random (Poisson) rather than adversarially:
  // the worst sliding window admits at most limit + 2 * sqrt(limit) + 1. The excess comes from the
  // previous window's requests clumping where the linear weight assumes them spread evenly.
  for (double overload : {1.05, 3.0}) {
    for (std::uint64_t limit : {10u, 100u, 1000u}) {
      for (std::uint64_t seed = 1; seed <= 3; ++seed) {
        Harness h;
        const auto p =
            Policy::sliding_window_counter(static_cast<std::int64_t>(limit), 10s).value();
        std::mt19937_64 rng(seed);
        std::exponential_distribution<double> gap(overload * static_cast<double>(limit) / 10e6);
        std::deque<Micros> admitted;
        const auto requests = static_cast<int>(20 * overload * static_cast<double>(limit));
        for (int i = 0; i < requests; ++i) {
          h.advance(Micros{1 + static_cast<std::int64_t>(gap(rng))});
          if (h.check(p).allowed) admitted.push_back(h.clock.now());
        }
        const std::uint64_t worst = max_in_any_window(admitted, 10s);
        const auto bound = limit + static_cast<std::uint64_t>(2 * std::sqrt(limit)) + 1;
        EXPECT_LE(worst, bound) << "limit " << limit << " overload " << overload;
        EXPECT_GE(worst, limit) << "limit " << limit << " overload " << overload;
      }
    }
  }
}

TEST(SlidingWindowCounter, WorstCaseIsTwiceTheLimit) {
  // Everything of the previous window at its very end, then a burst just before the current
  // window ends, when that previous window weighs almost nothing: close to 2 * limit in one window.
  Harness h;
  const auto p = Policy::sliding_window_counter(100, 1min).value();
  h.advance(1min - 1ms);
  std::deque<Micros> admitted;
  for (int i = 0; i < 100; ++i) {
    if (h.check(p).allowed) admitted.push_back(h.clock.now());
  }
  h.advance(1min - 1ms);
  for (int i = 0; i < 200; ++i) {
    if (h.check(p).allowed) admitted.push_back(h.clock.now());
  }
  const std::uint64_t worst = max_in_any_window(admitted, 1min);
  EXPECT_LE(worst, 200u);
  EXPECT_GE(worst, 199u);
}

}  // namespace
}  // namespace floodgate::testing
