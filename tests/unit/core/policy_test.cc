// Parameter validation: every bad parameter is refused with the field's wire name and a sentence.
#include <cmath>
#include <limits>

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

TEST(Policy, CompiledRatesAreExactToOnePartInAMillion) {
  for (double rate : {0.5, 1.0 / 3, 0.001, 7.25, 1000.0, 123456.789, 4294967295.0}) {
    for (std::int64_t capacity : {1LL, 10LL, 1000LL, 4294967295LL}) {
      auto p = Policy::token_bucket(capacity, rate);
      if (!p) continue;  // too slow to refill within a year
      const long double effective = 1e6L * static_cast<long double>(p->ticks_per_us()) /
                                    static_cast<long double>(p->interval());
      EXPECT_NEAR(static_cast<double>(effective / rate), 1.0, 1e-6) << rate << " " << capacity;
      EXPECT_LE(static_cast<long double>(p->limit()) * p->interval(), 9007199254740992.0L);
    }
  }
}

TEST(Policy, GcraLimitIsTheBurst) {
  auto p = Policy::gcra(100, 1min, 20).value();
  EXPECT_EQ(p.limit(), 20u);
  EXPECT_EQ(p.gcra_limit(), 100u);
  EXPECT_EQ(Policy::gcra(100, 1min).value().limit(), 100u);
}

}  // namespace
}  // namespace floodgate
