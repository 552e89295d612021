#include "floodgate/policy.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <ostream>
#include <string>

#include "core/arith.h"
#include "floodgate/decision.h"

namespace floodgate {
namespace {

constexpr std::array<std::string_view, kAlgorithmCount> kAlgorithmNames = {
    "token_bucket",           "gcra", "leaky_bucket", "fixed_window", "sliding_window_log",
    "sliding_window_counter",
};

// Debt meters keep limit * interval strictly below this, so a debt fits 50 bits: the Redis scripts
// pack it with a 46-bit stamp into 12 bytes (debt_meter.lua), and a whole tolerance plus any single
// step stays exact in int64 and in a Lua double. It costs rate precision: the interval stays at
// least about 2^50 / kMaxLimit = 2^18 ticks, so rounding it moves a rate by less than 2e-6.
constexpr std::int64_t kMaxTolerance = std::int64_t{1} << 50;
// Upper bound on ticks per microsecond; keeps elapsed * ticks_per_us far from overflow.
constexpr long double kMaxTicksPerUs = 1073741824.0L;  // 2^30
// Windows up to 2^37 us (~38 h) are weighted at full microsecond resolution.
constexpr int kWeightWindowBits = 37;

std::string describe(long double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10Lg", v);
  return buf;
}

ParamError error(std::string_view field, std::string message) {
  return ParamError{std::string(field), std::move(message)};
}

std::optional<ParamError> check_count(std::string_view field, std::int64_t value,
                                      std::uint64_t max) {
  if (value < 1) {
    return error(field, "must be at least 1, got " + std::to_string(value));
  }
  if (static_cast<std::uint64_t>(value) > max) {
    return error(field,
                 "must be at most " + std::to_string(max) + ", got " + std::to_string(value));
  }
  return std::nullopt;
}

std::optional<ParamError> check_window(Micros window) {
  if (window.count() <= 0) {
    return error("window", "must be greater than 0");
  }
  if (window < kMinWindow) {
    return error("window", "must be at least 1 ms, got " + std::to_string(window.count()) + " us");
  }
  if (window > kMaxWindow) {
    return error("window", "must be at most 365 days (31536000 s), got " +
                               describe(static_cast<long double>(window.count()) / 1e6L) + " s");
  }
  return std::nullopt;
}

std::optional<ParamError> check_rate(std::string_view field, double rate, bool zero_allowed) {
  if (!std::isfinite(rate)) {
    return error(field, "must be a finite number");
  }
  if (rate < 0) {
    return error(field, "must not be negative, got " + describe(rate));
  }
  if (rate == 0 && !zero_allowed) {
    return error(field, "must be greater than 0");
  }
  if (rate > kMaxRate) {
    return error(field, "must be at most 4294967295 per second, got " + describe(rate));
  }
  return std::nullopt;
}

}  // namespace

Result<Micros> window_from_seconds(double seconds, std::string_view field) {
  if (!std::isfinite(seconds)) return error(field, "must be a finite number of seconds");
  if (seconds <= 0) return error(field, "must be greater than 0");
  if (seconds < 1e-3) return error(field, "must be at least 1 ms, got " + describe(seconds) + " s");
  const double max_s = static_cast<double>(kMaxWindow.count()) / 1e6;
  if (seconds > max_s) {
    return error(field, "must be at most 365 days (31536000 s), got " + describe(seconds) + " s");
  }
  return Micros{std::llround(seconds * 1e6)};
}

std::string_view to_string(Algorithm algorithm) {
  return kAlgorithmNames[static_cast<std::size_t>(algorithm)];
}

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  for (std::size_t i = 0; i < kAlgorithmNames.size(); ++i) {
    if (kAlgorithmNames[i] == name) return static_cast<Algorithm>(i);
  }
  return std::nullopt;
}

std::string_view to_string(DenyReason reason) {
  switch (reason) {
    case DenyReason::kNone:
      return "";
    case DenyReason::kLimited:
      return "limited";
    case DenyReason::kCostExceedsCapacity:
      return "cost_exceeds_capacity";
    case DenyReason::kStoreUnavailable:
      return "store_unavailable";
  }
  return "";
}

std::ostream& operator<<(std::ostream& os, const ParamError& e) {
  return os << e.field << ": " << e.message;
}

std::ostream& operator<<(std::ostream& os, const Policy& p) {
  os << to_string(p.algorithm()) << '(';
  switch (p.algorithm()) {
    case Algorithm::kTokenBucket:
      return os << "capacity=" << p.limit() << ", refill_rate=" << p.rate() << ')';
    case Algorithm::kLeakyBucket:
      return os << "capacity=" << p.limit() << ", leak_rate=" << p.rate() << ')';
    case Algorithm::kGcra:
      return os << "limit=" << p.gcra_limit() << ", window=" << p.window().count()
                << "us, burst=" << p.limit() << ')';
    default:
      return os << "limit=" << p.limit() << ", window=" << p.window().count() << "us)";
  }
}

void throw_exception_from_error(const ParamError& e, const boost::source_location&) {
  throw std::invalid_argument(e.field + ": " + e.message);
}

Result<Policy> Policy::debt_meter(Algorithm algorithm, std::uint64_t capacity,
                                  long double us_per_token, double rate,
                                  std::string_view rate_field) {
  Policy p;
  p.algorithm_ = algorithm;
  p.limit_ = capacity;
  p.rate_ = rate;
  if (rate == 0) {  // never refills: debt only grows, so time needs no ticks at all
    p.ticks_per_us_ = 0;
    p.interval_ = 1;
    return p;
  }
  const long double fill_us = static_cast<long double>(capacity) * us_per_token;
  if (fill_us > static_cast<long double>(kMaxWindow.count())) {
    return error(rate_field, "is too slow: an empty bucket of " + std::to_string(capacity) +
                                 " would take " + describe(fill_us / 86400e6L) +
                                 " days to refill; the most is 365 days");
  }
  // Pick the finest ticks that keep the full tolerance (capacity * interval) below 2^50. Rounding
  // the interval may add up to capacity / 2 ticks to ticks * fill_us, so the ticks also keep the
  // rounded interval at most max_interval: llround(x) <= max_interval while x < max_interval + 0.5,
  // and the loop settles the last unit that long double arithmetic leaves open.
  const std::int64_t max_interval = (kMaxTolerance - 1) / static_cast<std::int64_t>(capacity);
  long double ticks = std::clamp(std::floor(static_cast<long double>(kMaxTolerance) / fill_us),
                                 1.0L, kMaxTicksPerUs);
  ticks = std::max(1.0L, std::min(ticks, std::floor((max_interval + 0.5L) / us_per_token)));
  while (ticks > 1 && std::llround(ticks * us_per_token) > max_interval) ticks -= 1;
  p.ticks_per_us_ = static_cast<std::int64_t>(ticks);
  p.interval_ = std::max<std::int64_t>(1, std::llround(ticks * us_per_token));
  p.window_ = Micros{static_cast<std::int64_t>(std::ceil(fill_us))};
  return p;
}

Result<Policy> Policy::token_bucket(std::int64_t capacity, double refill_rate) {
  if (auto e = check_count("capacity", capacity, kMaxLimit)) return *e;
  if (auto e = check_rate("refill_rate", refill_rate, /*zero_allowed=*/true)) return *e;
  return debt_meter(Algorithm::kTokenBucket, static_cast<std::uint64_t>(capacity),
                    1e6L / static_cast<long double>(refill_rate), refill_rate, "refill_rate");
}

Result<Policy> Policy::leaky_bucket(std::int64_t capacity, double leak_rate) {
  if (auto e = check_count("capacity", capacity, kMaxLimit)) return *e;
  if (auto e = check_rate("leak_rate", leak_rate, /*zero_allowed=*/false)) return *e;
  return debt_meter(Algorithm::kLeakyBucket, static_cast<std::uint64_t>(capacity),
                    1e6L / static_cast<long double>(leak_rate), leak_rate, "leak_rate");
}

Result<Policy> Policy::gcra(std::int64_t limit, Micros window, std::optional<std::int64_t> burst) {
  if (auto e = check_count("limit", limit, kMaxLimit)) return *e;
  if (auto e = check_window(window)) return *e;
  const std::int64_t cells = burst.value_or(limit);
  if (auto e = check_count("burst", cells, kMaxLimit)) return *e;
  const long double us_per_request =
      static_cast<long double>(window.count()) / static_cast<long double>(limit);
  const double rate = static_cast<double>(limit) * 1e6 / static_cast<double>(window.count());
  auto p = debt_meter(Algorithm::kGcra, static_cast<std::uint64_t>(cells), us_per_request, rate,
                      "burst");
  if (p) {
    p->window_ = window;
    p->gcra_limit_ = static_cast<std::uint64_t>(limit);
  }
  return p;
}

Result<Policy> Policy::window_policy(Algorithm algorithm, std::int64_t limit, Micros window,
                                     std::uint64_t max_limit) {
  if (auto e = check_count("limit", limit, max_limit)) return *e;
  if (auto e = check_window(window)) return *e;
  Policy p;
  p.algorithm_ = algorithm;
  p.limit_ = static_cast<std::uint64_t>(limit);
  p.window_ = window;
  const auto bits = static_cast<int>(std::bit_width(static_cast<std::uint64_t>(window.count())));
  p.weight_shift_ = std::max(0, bits - kWeightWindowBits);
  return p;
}

Result<Policy> Policy::fixed_window(std::int64_t limit, Micros window) {
  return window_policy(Algorithm::kFixedWindow, limit, window, kMaxLimit);
}

Result<Policy> Policy::sliding_window_log(std::int64_t limit, Micros window) {
  return window_policy(Algorithm::kSlidingWindowLog, limit, window, kMaxLogLimit);
}

Result<Policy> Policy::sliding_window_counter(std::int64_t limit, Micros window) {
  return window_policy(Algorithm::kSlidingWindowCounter, limit, window, kMaxLimit);
}

}  // namespace floodgate
