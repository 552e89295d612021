// File: floodgate/policy_spec.h
//
// PolicySpec: a policy as users write it — in a JSON request body or a YAML rules file — before
// it is checked: an algorithm name and the parameters given, each a number as written. One
// function turns it into a Policy, so every front and the rules file agree on names, defaults and
// errors.
//
// Example:
//   PolicySpec spec;
//   spec.algorithm = "fixed_window";
//   spec.limit = Number::of(100);
//   spec.window = Number::of(60);
//   Result<Policy> p = build_policy(spec, PolicyDefaults{});
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/policy.h"

namespace floodgate {

// Number: a number as written: integers stay exact, anything else is a double.
struct Number {
  bool is_integer = false;
  std::int64_t integer = 0;
  double real = 0;

  static Number of(std::int64_t i) { return {true, i, static_cast<double>(i)}; }
  static Number of_real(double d) { return {false, 0, d}; }
  double as_double() const { return is_integer ? static_cast<double>(integer) : real; }
  // as_integer(): the value if it is whole (10 and 10.0 alike), else nullopt.
  std::optional<std::int64_t> as_integer() const;
};

// parse_number(): a decimal integer or a finite real written in full ("10", "-3", "0.5", "1e3"),
// as config files give numbers; nullopt for anything else (including "inf", "nan" and "10 ").
std::optional<Number> parse_number(std::string_view text);

struct PolicySpec {
  std::optional<std::string> algorithm;  // "sliding_window" is accepted for sliding_window_log
  std::optional<Number> limit;
  std::optional<Number> capacity;
  std::optional<Number> burst;
  std::optional<Number> refill_rate;
  std::optional<Number> leak_rate;
  std::optional<Number> window;     // seconds, may be fractional
  std::optional<Number> window_ms;  // milliseconds, an integer

  // empty(): names neither an algorithm nor any parameter (the defaults apply).
  bool empty() const {
    return !algorithm && !limit && !capacity && !burst && !refill_rate && !leak_rate && !window &&
           !window_ms;
  }
};

// PolicyDefaults: what a spec leaves out (the seeds' DEFAULT_ALGORITHM, DEFAULT_LIMIT and
// DEFAULT_WINDOW). A missing rate is limit / window per second.
struct PolicyDefaults {
  Algorithm algorithm = Algorithm::kTokenBucket;
  std::int64_t limit = 1000;
  Micros window = std::chrono::seconds(3600);
};

// build_policy(): the policy `spec` asks for. Errors name the field: an unknown algorithm
// ("algorithm"), a parameter of another algorithm, a non-integer count, or any range error of
// the Policy constructors.
Result<Policy> build_policy(const PolicySpec& spec, const PolicyDefaults& defaults);

}  // namespace floodgate
