// File: core/sliding_window_counter.h
//
// sliding_window_counter: Cloudflare's approximation of a sliding window. Two adjacent
// epoch-aligned windows are kept; at offset e into the current window the estimate is
//
//   previous * w(e) / 65536 + current,   w(e) = ceil((window - e) * 65536 / window)
//
// in 16-bit fixed point: w(0) = 65536, and w stays above 0 until the window ends. The weight is
// rounded up, so fixed point never admits more than the exact estimate would. A request of cost n
// passes when estimate + n <= limit, compared exactly in fixed point. For windows above 2^37 us
// (~38 hours) e and window are first shifted right by Policy::weight_shift() so every product
// stays below 2^53 (exact in the Lua scripts' doubles); the weight's resolution is unaffected.
//
// Error bound (docs/ALGORITHMS.md): the estimate assumes the previous window's requests were
// spread evenly. In any window-long interval at most 2 * limit pass in the worst case (all of the
// previous window's requests at its very end); with random (Poisson) traffic the worst interval
// stays within limit + 2 * sqrt(limit) + 1 (tests/unit/core/sliding_window_counter_test.cc).
#pragma once

#include <cstdint>

#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::core {

struct SlidingCounterState {
  std::int64_t start_us = 0;   // start of the current window
  std::uint32_t current = 0;   // cost admitted in it
  std::uint32_t previous = 0;  // cost admitted in the window before
};

Decision decide_sliding_counter(const Policy& policy, SlidingCounterState& state,
                                std::int64_t now_us, std::uint64_t cost);

// sliding_counter_weight(): w(e) above, for 0 <= offset_us < window. Exposed for tests.
std::int64_t sliding_counter_weight(const Policy& policy, std::int64_t offset_us);

}  // namespace floodgate::core
