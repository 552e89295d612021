// File: core/arith.h
//
// Integer helpers for the algorithms. Every quantity they handle is kept below 2^53 so that the
// Redis Lua scripts (which compute in IEEE doubles) reproduce each step exactly.
#pragma once

#include <cstdint>

namespace floodgate::core {

// The fixed-point "one" of the sliding window counter's weights.
inline constexpr std::int64_t kWeightOne = 65536;
// Largest value an algorithm's state or intermediate result may take (see file comment).
inline constexpr std::int64_t kMaxExact = std::int64_t{1} << 53;

// ceil_div(): a / b rounded up. Precondition: a >= 0, b > 0.
constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0); }

// floor_div(): a / b rounded towards minus infinity (time before the epoch still floors). b > 0.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

}  // namespace floodgate::core
