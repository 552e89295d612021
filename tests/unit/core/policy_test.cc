// Parameter validation: every bad parameter is refused with the field's wire name and a sentence.
#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "floodgate/policy.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

MATCHER_P2(IsParamError, field, text, "") {
  if (arg.has_value()) {
    *result_listener << "got a policy";
    return false;
  }
  *result_listener << "error " << arg.error().field << ": " << arg.error().message;
  return arg.error().field == field && arg.error().message.find(text) != std::string::npos;
}

TEST(Policy, AlgorithmNamesRoundTrip) {
  for (int i = 0; i < kAlgorithmCount; ++i) {
    const auto a = static_cast<Algorithm>(i);
    EXPECT_EQ(parse_algorithm(to_string(a)), a);
  }
  EXPECT_EQ(parse_algorithm("sliding_window"), std::nullopt);
  EXPECT_EQ(parse_algorithm(""), std::nullopt);
}

TEST(Policy, ZeroOrNegativeWindowIsRefused) {
  EXPECT_THAT(Policy::fixed_window(10, 0s), IsParamError("window", "must be greater than 0"));
  EXPECT_THAT(Policy::sliding_window_log(10, -1s),
              IsParamError("window", "must be greater than 0"));
  EXPECT_THAT(Policy::gcra(10, Micros{-5}), IsParamError("window", "must be greater than 0"));
}

TEST(Policy, SubMillisecondWindowIsRefused) {
  EXPECT_THAT(Policy::sliding_window_counter(10, 999us), IsParamError("window", "at least 1 ms"));
  EXPECT_TRUE(Policy::sliding_window_counter(10, 1ms).has_value());
}

TEST(Policy, WindowBeyondOneYearIsRefused) {
  EXPECT_TRUE(Policy::fixed_window(10, kMaxWindow).has_value());
  EXPECT_THAT(Policy::fixed_window(10, kMaxWindow + 1us),
              IsParamError("window", "at most 365 days"));
}

TEST(Policy, ZeroCapacityIsRefused) {
  EXPECT_THAT(Policy::token_bucket(0, 1), IsParamError("capacity", "must be at least 1, got 0"));
  EXPECT_THAT(Policy::leaky_bucket(-3, 1), IsParamError("capacity", "must be at least 1, got -3"));
  EXPECT_THAT(Policy::fixed_window(0, 1s), IsParamError("limit", "must be at least 1"));
  EXPECT_THAT(Policy::gcra(10, 1s, 0), IsParamError("burst", "must be at least 1"));
}

TEST(Policy, LimitsBeyond32BitsAreRefused) {
  EXPECT_TRUE(Policy::token_bucket(4294967295, 1e6).has_value());
  EXPECT_THAT(Policy::token_bucket(4294967296, 1e6),
              IsParamError("capacity", "must be at most 4294967295, got 4294967296"));
  EXPECT_THAT(Policy::sliding_window_counter(4294967296, 1s), IsParamError("limit", "at most"));
  EXPECT_THAT(Policy::gcra(1, 1s, 4294967296), IsParamError("burst", "at most"));
}

TEST(Policy, SlidingLogLimitIsCappedBecauseItKeepsAnEntryPerRequest) {
  EXPECT_TRUE(Policy::sliding_window_log(100'000, 1s).has_value());
  EXPECT_THAT(Policy::sliding_window_log(100'001, 1s), IsParamError("limit", "at most 100000"));
}

TEST(Policy, NanAndInfiniteRatesAreRefused) {
  EXPECT_THAT(Policy::token_bucket(10, std::nan("")), IsParamError("refill_rate", "finite"));
  EXPECT_THAT(Policy::token_bucket(10, std::numeric_limits<double>::infinity()),
              IsParamError("refill_rate", "finite"));
  EXPECT_THAT(Policy::leaky_bucket(10, -std::numeric_limits<double>::infinity()),
              IsParamError("leak_rate", "finite"));
}

TEST(Policy, NegativeAndHugeRatesAreRefused) {
  EXPECT_THAT(Policy::token_bucket(10, -0.5), IsParamError("refill_rate", "must not be negative"));
  EXPECT_THAT(Policy::token_bucket(10, 5e9), IsParamError("refill_rate", "at most 4294967295"));
}

TEST(Policy, ZeroRefillIsAQuotaButZeroLeakIsRefused) {
  EXPECT_TRUE(Policy::token_bucket(10, 0).has_value());
  EXPECT_THAT(Policy::leaky_bucket(10, 0), IsParamError("leak_rate", "greater than 0"));
}

TEST(Policy, RefillSlowerThanOneYearIsRefused) {
  // 10 tokens at 1 per 40 days: 400 days to refill.
  EXPECT_THAT(Policy::token_bucket(10, 1.0 / (40 * 86400)),
              IsParamError("refill_rate", "too slow"));
  EXPECT_TRUE(Policy::token_bucket(10, 1.0 / (30 * 86400)).has_value());
  // gcra: a burst of 10,000 at 1 per hour takes 416 days to come back.
  EXPECT_THAT(Policy::gcra(1, 1h, 10'000), IsParamError("burst", "too slow"));
  EXPECT_TRUE(Policy::gcra(1, 1h, 8'000).has_value());
}

TEST(Policy, WindowFromSecondsRefusesWhatItCannotRepresent) {
  EXPECT_EQ(window_from_seconds(0.5).value(), 500ms);
  EXPECT_EQ(window_from_seconds(3600).value(), 1h);
  EXPECT_EQ(window_from_seconds(0.0015).value(), 1500us);
  EXPECT_THAT(window_from_seconds(std::nan("")), IsParamError("window", "finite"));
  EXPECT_THAT(window_from_seconds(1e300), IsParamError("window", "at most 365 days"));
  EXPECT_THAT(window_from_seconds(-1, "DEFAULT_WINDOW"),
              IsParamError("DEFAULT_WINDOW", "greater than 0"));
  EXPECT_THAT(window_from_seconds(1e-4), IsParamError("window", "at least 1 ms"));
}

TEST(Policy, ThrowingAccessorNamesTheField) {
  try {
    (void)Policy::token_bucket(0, 1).value();
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("capacity: must be at least 1"));
  }
}

// The debt meters' compiled form, over the whole parameter range: capacities up to 2^32 - 1, rates
// from the slowest that refills within 365 days to 4,294,967,295 per second.
std::vector<Policy> debt_meters_over_the_parameter_range() {
  std::vector<Policy> policies;
  std::mt19937_64 rng(20250101);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  const double max_limit = static_cast<double>(kMaxLimit);
  const double year_s = static_cast<double>(kMaxWindow.count()) / 1e6;
  for (int i = 0; i < 200'000; ++i) {
    std::int64_t capacity = 0;
    switch (i % 4) {
      case 0:  // the largest capacities, where the interval is smallest
        capacity = static_cast<std::int64_t>(kMaxLimit) - static_cast<std::int64_t>(rng() % 1000);
        break;
      case 1:
        capacity = 1 + static_cast<std::int64_t>(rng() % kMaxLimit);
        break;
      case 2:
        capacity = std::llround(std::exp(uniform(0, std::log(max_limit))));
        break;
      default:
        capacity = 1 + static_cast<std::int64_t>(rng() % 100'000);
        break;
    }
    const auto c = static_cast<double>(capacity);
    double rate = 0;
    switch (i / 4 % 3) {
      case 0:  // anything
        rate = std::exp(uniform(std::log(1e-9), std::log(kMaxRate)));
        break;
      case 1:  // just fast enough to refill within a year: the longest drain
        rate = c / year_s * (1 + uniform(0, 1e-3));
        break;
      default:  // an empty bucket refills in about a second: ticks_per_us near its 2^30 cap
        rate = std::min(c / uniform(0.5, 2.0), kMaxRate);
        break;
    }
    if (auto p = Policy::token_bucket(capacity, rate)) policies.push_back(*p);
  }
  for (double rate : {0.5, 1.0 / 3, 0.001, 7.25, 1000.0, 123456.789, 4294967295.0}) {
    for (std::int64_t capacity : {1LL, 10LL, 1000LL, 4294967295LL}) {
      if (auto p = Policy::token_bucket(capacity, rate)) policies.push_back(*p);
    }
  }
  return policies;
}

// A rate is held as ticks_per_us / interval, with limit * interval < 2^50 and ticks_per_us <= 2^30:
// the interval stays above about 2^18 ticks, so rounding it moves the rate by less than 2e-6
// (measured worst: 1.99e-6, at a capacity near 2^32 refilling in about a second).
TEST(Policy, CompiledRatesAreExactToTwoPartsInAMillion) {
  double worst = 0;
  for (const Policy& p : debt_meters_over_the_parameter_range()) {
    const long double effective =
        1e6L * static_cast<long double>(p.ticks_per_us()) / static_cast<long double>(p.interval());
    const double error = std::fabs(static_cast<double>(effective / p.rate()) - 1.0);
    worst = std::max(worst, error);
    ASSERT_LT(error, 2e-6) << p;
  }
  std::cout << "[ precision] worst relative rate error: " << worst << "\n";
}

// The Redis scripts pack a debt in 50 bits and a stamp in 46 (debt_meter.lua): every tolerance
// (limit * interval, the largest debt) stays below 2^50, however the interval rounds, and a full
// debt drains within 365 days and a minute, well inside the +-2^45 us (407 days) a stamp is read
// in.
TEST(Policy, DebtFitsFiftyBitsAndDrainsWithinAYearAndAMinute) {
  constexpr long double kTwoTo50 = 1125899906842624.0L;
  long double largest = 0;
  Micros longest{0};
  for (const Policy& p : debt_meters_over_the_parameter_range()) {
    const long double tolerance = static_cast<long double>(p.limit()) * p.interval();
    ASSERT_LT(tolerance, kTwoTo50) << p;
    ASSERT_GE(p.ticks_per_us(), 1) << p;
    const Micros drain{static_cast<std::int64_t>(
        std::ceil(tolerance / static_cast<long double>(p.ticks_per_us())))};
    ASSERT_LE(drain, kMaxWindow + 1min) << p;
    largest = std::max(largest, tolerance);
    longest = std::max(longest, drain);
  }
  std::cout << "[ bounds   ] largest tolerance 2^50 - " << static_cast<double>(kTwoTo50 - largest)
            << ", longest drain 365 days + " << (longest - kMaxWindow).count() << " us\n";
}

TEST(Policy, GcraLimitIsTheBurst) {
  auto p = Policy::gcra(100, 1min, 20).value();
  EXPECT_EQ(p.limit(), 20u);
  EXPECT_EQ(p.gcra_limit(), 100u);
  EXPECT_EQ(Policy::gcra(100, 1min).value().limit(), 100u);
}

}  // namespace
}  // namespace floodgate
