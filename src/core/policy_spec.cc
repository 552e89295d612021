#include "floodgate/policy_spec.h"

#include <charconv>
#include <cmath>

namespace floodgate {
namespace {

ParamError error(std::string_view field, std::string message) {
  return ParamError{std::string(field), std::move(message)};
}

Result<std::int64_t> integer_of(const Number& n, std::string_view field) {
  if (auto i = n.as_integer()) return *i;
  return error(field, "must be an integer");
}

}  // namespace

std::optional<std::int64_t> Number::as_integer() const {
  if (is_integer) return integer;
  if (std::isfinite(real) && real == std::floor(real) && std::fabs(real) < 9e15) {
    return static_cast<std::int64_t>(real);
  }
  return std::nullopt;
}

std::optional<Number> parse_number(std::string_view s) {
  std::int64_t i = 0;
  if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
      ec == std::errc() && p == s.data() + s.size()) {
    return Number::of(i);
  }
  double d = 0;
  if (auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
      ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) {
    return Number::of_real(d);
  }
  return std::nullopt;
}

Result<Policy> build_policy(const PolicySpec& r, const PolicyDefaults& defaults) {
  Algorithm algorithm = defaults.algorithm;
  if (r.algorithm) {
    const auto parsed = *r.algorithm == "sliding_window" ? Algorithm::kSlidingWindowLog
                                                         : parse_algorithm(*r.algorithm);
    if (!parsed) {
      return error("algorithm",
                   "must be one of token_bucket, gcra, leaky_bucket, fixed_window, "
                   "sliding_window_log, sliding_window_counter");
    }
    algorithm = *parsed;
  }

  // Parameters that belong to another algorithm are refused rather than silently ignored.
  const bool bucket = algorithm == Algorithm::kTokenBucket || algorithm == Algorithm::kLeakyBucket;
  const struct {
    bool present;
    std::string_view field;
  } foreign[] = {
      {bucket && r.limit.has_value(), "limit"},
      {!bucket && r.capacity.has_value(), "capacity"},
      {algorithm != Algorithm::kTokenBucket && r.refill_rate.has_value(), "refill_rate"},
      {algorithm != Algorithm::kLeakyBucket && r.leak_rate.has_value(), "leak_rate"},
      {algorithm != Algorithm::kGcra && r.burst.has_value(), "burst"},
      {bucket && r.window.has_value(), "window"},
      {bucket && r.window_ms.has_value(), "window_ms"},
  };
  for (const auto& f : foreign) {
    if (f.present)
      return error(f.field, "is not a parameter of " + std::string(to_string(algorithm)));
  }
  if (r.window && r.window_ms)
    return error("window_ms", "give window (seconds) or window_ms, not both");

  Micros window = defaults.window;
  if (r.window) {
    auto w = window_from_seconds(r.window->as_double(), "window");
    if (!w) return w.error();
    window = *w;
  } else if (r.window_ms) {
    auto ms = integer_of(*r.window_ms, "window_ms");
    if (!ms) return ms.error();
    auto w = window_from_seconds(static_cast<double>(*ms) / 1e3, "window_ms");
    if (!w) return w.error();
    window = *w;
  }

  auto count = [&](const std::optional<Number>& n, std::string_view field) -> Result<std::int64_t> {
    return n ? integer_of(*n, field) : Result<std::int64_t>(defaults.limit);
  };

  switch (algorithm) {
    case Algorithm::kTokenBucket:
    case Algorithm::kLeakyBucket: {
      auto capacity = count(r.capacity, "capacity");
      if (!capacity) return capacity.error();
      const auto& rate_field = algorithm == Algorithm::kTokenBucket ? r.refill_rate : r.leak_rate;
      const double rate = rate_field ? rate_field->as_double()
                                     : static_cast<double>(defaults.limit) * 1e6 /
                                           static_cast<double>(defaults.window.count());
      return algorithm == Algorithm::kTokenBucket ? Policy::token_bucket(*capacity, rate)
                                                  : Policy::leaky_bucket(*capacity, rate);
    }
    case Algorithm::kGcra: {
      auto limit = count(r.limit, "limit");
      if (!limit) return limit.error();
      std::optional<std::int64_t> burst;
      if (r.burst) {
        auto b = integer_of(*r.burst, "burst");
        if (!b) return b.error();
        burst = *b;
      }
      return Policy::gcra(*limit, window, burst);
    }
    case Algorithm::kFixedWindow:
      if (auto limit = count(r.limit, "limit"))
        return Policy::fixed_window(*limit, window);
      else
        return limit.error();
    case Algorithm::kSlidingWindowLog:
      if (auto limit = count(r.limit, "limit"))
        return Policy::sliding_window_log(*limit, window);
      else
        return limit.error();
    case Algorithm::kSlidingWindowCounter:
      if (auto limit = count(r.limit, "limit"))
        return Policy::sliding_window_counter(*limit, window);
      else
        return limit.error();
  }
  return error("algorithm", "is not supported");
}

}  // namespace floodgate
