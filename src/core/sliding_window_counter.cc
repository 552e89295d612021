#include "core/sliding_window_counter.h"

#include <algorithm>

#include "core/arith.h"

namespace floodgate::core {
namespace {

// The earliest time (as a wait from `now_us`) at which a request of `cost` passes, given the
// counts of window `window` and no further admissions. The estimate never rises as time passes,
// so we look for the first moment it fits: in the current window, in the next (where `current`
// becomes `previous`), or in the one after (where both have rolled out).
Micros earliest_pass(const Policy& policy, std::int64_t window_start, std::uint64_t previous,
                     std::uint64_t current, std::int64_t now_us, std::uint64_t cost) {
  const std::uint64_t limit = policy.limit();
  if (cost > limit) return kNever;
  const std::int64_t window_us = policy.window().count();
  const int shift = policy.weight_shift();
  const std::int64_t scaled_window = window_us >> shift;

  std::uint64_t prev = previous;
  std::uint64_t cur = current;
  for (int step = 0; step < 3; ++step) {
    const std::int64_t start = window_start + step * window_us;
    const std::int64_t from = std::max(now_us, start);
    if (cur + cost <= limit) {
      if (prev == 0) return Micros{from - now_us};
      const auto budget = static_cast<std::int64_t>((limit - cur - cost)) * kWeightOne;
      const std::int64_t max_weight = budget / static_cast<std::int64_t>(prev);
      if (max_weight >= kWeightOne) return Micros{from - now_us};
      // Smallest scaled offset with w <= max_weight:
      //   ceil((W - e) * 65536 / W) <= max_weight  <=>  e >= W - floor(max_weight * W / 65536)
      const std::int64_t scaled_offset = scaled_window - max_weight * scaled_window / kWeightOne;
      const std::int64_t offset = scaled_offset << shift;
      if (offset < window_us) return Micros{std::max(from, start + offset) - now_us};
    }
    prev = cur;
    cur = 0;
  }
  return kNever;  // unreachable: after two steps both counts are 0 and cost <= limit
}

}  // namespace

std::int64_t sliding_counter_weight(const Policy& policy, std::int64_t offset_us) {
  const int shift = policy.weight_shift();
  const std::int64_t scaled_window = policy.window().count() >> shift;
  const std::int64_t scaled_offset = std::min(offset_us >> shift, scaled_window);
  return ceil_div((scaled_window - scaled_offset) * kWeightOne, scaled_window);
}

Decision decide_sliding_counter(const Policy& policy, SlidingCounterState& state,
                                std::int64_t now_us, std::uint64_t cost) {
  const std::int64_t window_us = policy.window().count();
  const std::uint64_t limit = policy.limit();

  // Roll the windows forward to now. A clock behind the stored window keeps the stored one. A
  // start off this policy's boundaries was written under another window length (a rule changed
  // on reload): its counts are carried into the current window, never misread.
  const std::int64_t now_start = floor_div(now_us, window_us) * window_us;
  std::int64_t start = state.start_us;
  std::uint64_t previous = state.previous;
  std::uint64_t current = state.current;
  if ((previous == 0 && current == 0) || start % window_us != 0) {
    start = now_start;
  } else if (now_start > start) {
    previous = now_start == start + window_us ? current : 0;
    current = 0;
    start = now_start;
  }
  const std::int64_t offset = std::max<std::int64_t>(0, now_us - start);
  const auto estimate = [&] {
    return static_cast<std::int64_t>(previous) * sliding_counter_weight(policy, offset) +
           static_cast<std::int64_t>(current) * kWeightOne;
  };
  const std::int64_t ceiling = static_cast<std::int64_t>(limit) * kWeightOne;

  Decision d;
  d.limit = limit;
  if (cost > limit) {
    d.reason = DenyReason::kCostExceedsCapacity;
    d.retry_after = kNever;
  } else if (estimate() + static_cast<std::int64_t>(cost) * kWeightOne <= ceiling) {
    d.allowed = true;
    current += cost;
  } else {
    d.reason = DenyReason::kLimited;
    d.retry_after = earliest_pass(policy, start, previous, current, now_us, cost);
  }
  const std::int64_t used = estimate();
  d.remaining = used >= ceiling ? 0 : static_cast<std::uint64_t>((ceiling - used) / kWeightOne);
  d.reset_after = earliest_pass(policy, start, previous, current, now_us, limit);
  state = (previous == 0 && current == 0)
              ? SlidingCounterState{}
              : SlidingCounterState{start, static_cast<std::uint32_t>(current),
                                    static_cast<std::uint32_t>(previous)};
  return d;
}

}  // namespace floodgate::core
