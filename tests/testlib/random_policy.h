// File: testlib/random_policy.h
//
// random_policy(): a valid policy of `algorithm` with random parameters (limits 1..20, windows
// 1 ms..1 h), for the differential tests that drive two stores through the same sequences.
#pragma once

#include <random>
#include <vector>

#include "floodgate/policy.h"

namespace floodgate::testing {

inline Policy random_policy(Algorithm algorithm, std::mt19937_64& rng) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  const Micros window{pick(1'000, 3'600'000'000)};
  const std::int64_t limit = pick(1, 20);
  switch (algorithm) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(
                 limit, std::vector<double>{0, 0.5, 3, 1000}[static_cast<std::size_t>(pick(0, 3))])
          .value();
    case Algorithm::kGcra:
      return Policy::gcra(limit, window, pick(1, 25)).value();
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(
                 limit, std::vector<double>{0.5, 3, 1000}[static_cast<std::size_t>(pick(0, 2))])
          .value();
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(limit, window).value();
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(limit, window).value();
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(limit, window).value();
  }
  return Policy::fixed_window(1, window).value();
}

}  // namespace floodgate::testing
