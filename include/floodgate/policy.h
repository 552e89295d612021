// File: floodgate/policy.h
//
// A Policy is one algorithm with validated parameters, compiled into the integer form the
// algorithms compute with. Build it through the named constructors; each checks its parameters and
// returns a ParamError naming the offending field instead of a Policy that could misbehave.
//
// Example:
//   auto policy = floodgate::Policy::token_bucket(/*capacity=*/10, /*refill_rate=*/0.5);
//   if (!policy) std::cerr << policy.error().field << ": " << policy.error().message;
//
// Parameter ranges (the same for every store, so a policy valid here is valid in Redis too):
//   limit, capacity, burst        1 .. 4,294,967,295 (sliding_window_log: 1 .. 100,000)
//   window                        1 ms .. 365 days
//   refill_rate, leak_rate        finite, at most 4,294,967,295 per second, and slow enough that
//                                 an empty bucket refills within 365 days; refill_rate may be 0 (a
//                                 bucket that never refills: a plain quota)
//
// Rates are held as an integer interval per token in "ticks" chosen per policy (see debt_meter.h);
// the relative error of a fractional rate is below 2e-6.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include "floodgate/clock.h"

namespace floodgate {

enum class Algorithm : std::uint8_t {
  kTokenBucket,
  kGcra,
  kLeakyBucket,
  kFixedWindow,
  kSlidingWindowLog,
  kSlidingWindowCounter,
};
inline constexpr int kAlgorithmCount = 6;

// to_string(): the wire name, e.g. "token_bucket". parse_algorithm() is its inverse.
std::string_view to_string(Algorithm algorithm);
std::optional<Algorithm> parse_algorithm(std::string_view name);

// ParamError: a parameter that was missing or out of range. `field` is the parameter's wire name
// ("capacity", "refill_rate", "window", ...), `message` says what was wrong in a sentence.
struct ParamError {
  std::string field;
  std::string message;
};

// Throwing from result<T, ParamError>::value() raises std::invalid_argument("field: message").
[[noreturn]] void throw_exception_from_error(const ParamError& error,
                                             const boost::source_location& where);

template <class T>
using Result = boost::system::result<T, ParamError>;

// window_from_seconds(): a window given in (possibly fractional) seconds, as the JSON API and the
// seeds' DEFAULT_WINDOW take it, rounded to the nearest microsecond. Refuses NaN, infinities and
// anything outside [1 ms, 365 days], naming `field`.
Result<Micros> window_from_seconds(double seconds, std::string_view field = "window");

class Policy;
// Printing, for logs and test failures: "refill_rate: must be a finite number",
// "token_bucket(capacity=10, refill_rate=0.5)".
std::ostream& operator<<(std::ostream& os, const ParamError& error);
std::ostream& operator<<(std::ostream& os, const Policy& policy);

inline constexpr std::uint64_t kMaxLimit = 4'294'967'295;  // 2^32 - 1
inline constexpr std::uint64_t kMaxLogLimit =
    100'000;  // sliding_window_log keeps one entry per request
inline constexpr double kMaxRate = 4'294'967'295.0;  // per second
inline constexpr Micros kMinWindow = std::chrono::milliseconds(1);
inline constexpr Micros kMaxWindow = std::chrono::hours(24 * 365);

// Policy
//
// A value type: cheap to copy (48 bytes), immutable once built, safe to share between threads.
class Policy {
 public:
  // token_bucket: starts full with `capacity` tokens and refills `refill_rate` tokens per second.
  static Result<Policy> token_bucket(std::int64_t capacity, double refill_rate);
  // gcra: `limit` requests per `window`, of which up to `burst` (default: `limit`) may come at
  // once.
  static Result<Policy> gcra(std::int64_t limit, Micros window,
                             std::optional<std::int64_t> burst = std::nullopt);
  // leaky_bucket: a meter of `capacity` that drains `leak_rate` units per second; decisions carry
  // the delay that spaces admitted requests at the leak rate.
  static Result<Policy> leaky_bucket(std::int64_t capacity, double leak_rate);
  // fixed_window: `limit` per window, windows aligned to the Unix epoch.
  static Result<Policy> fixed_window(std::int64_t limit, Micros window);
  // sliding_window_log: exactly `limit` per any window-long interval; one entry per admitted
  // request.
  static Result<Policy> sliding_window_log(std::int64_t limit, Micros window);
  // sliding_window_counter: the previous window's count weighted by its overlap plus the current
  // window's count (Cloudflare's approximation), in 16-bit fixed point. See docs/ALGORITHMS.md for
  // its error bound.
  static Result<Policy> sliding_window_counter(std::int64_t limit, Micros window);

  Algorithm algorithm() const { return algorithm_; }
  // limit(): the most a fresh key admits at once (capacity, burst or window limit).
  std::uint64_t limit() const { return limit_; }
  // window(): the window of the window algorithms and gcra; for the buckets, the time an empty
  // bucket takes to refill (zero when it never refills).
  Micros window() const { return window_; }
  // rate(): refill_rate or leak_rate as given; for gcra, limit / window per second; 0 for windows.
  double rate() const { return rate_; }
  // gcra_limit(): the `limit` a gcra policy was built with (its `limit()` is the burst).
  std::uint64_t gcra_limit() const { return gcra_limit_; }

  // The compiled form, read by the algorithms (see debt_meter.h and sliding_window_counter.h).
  std::int64_t ticks_per_us() const { return ticks_per_us_; }
  std::int64_t interval() const { return interval_; }
  int weight_shift() const { return weight_shift_; }

  friend bool operator==(const Policy&, const Policy&) = default;

 private:
  Policy() = default;
  static Result<Policy> debt_meter(Algorithm algorithm, std::uint64_t capacity,
                                   long double us_per_token, double rate,
                                   std::string_view rate_field);
  static Result<Policy> window_policy(Algorithm algorithm, std::int64_t limit, Micros window,
                                      std::uint64_t max_limit);

  Algorithm algorithm_ = Algorithm::kTokenBucket;
  std::uint64_t limit_ = 0;
  Micros window_{0};
  double rate_ = 0;
  std::uint64_t gcra_limit_ = 0;
  std::int64_t ticks_per_us_ = 0;
  std::int64_t interval_ = 0;
  int weight_shift_ = 0;
};

}  // namespace floodgate
