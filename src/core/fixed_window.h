// File: core/fixed_window.h
//
// fixed_window: a counter per window, windows aligned to the Unix epoch (window i covers
// [i * window, (i + 1) * window)), so every instance and store agree on the boundaries. Cheap and
// exact per window; its known weakness is the boundary burst: up to 2 * limit can pass within one
// window-length interval that straddles a boundary.
//
// The state keeps the window's start time, not its index, so a state written under another policy
// (a rule whose window changed on reload) still means something: a start that is not on this
// policy's boundaries carries its count into the current window rather than being misread.
#pragma once

#include <cstdint>

#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::core {

struct FixedWindowState {
  std::int64_t start_us = 0;  // start of the window `count` belongs to
  std::uint64_t count = 0;    // cost admitted in that window; 0 means a fresh key
};

Decision decide_fixed_window(const Policy& policy, FixedWindowState& state, std::int64_t now_us,
                             std::uint64_t cost);

}  // namespace floodgate::core
