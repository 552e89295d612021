#include "core/fixed_window.h"

#include "core/arith.h"

namespace floodgate::core {

Decision decide_fixed_window(const Policy& policy, FixedWindowState& state, std::int64_t now_us,
                             std::uint64_t cost) {
  const std::int64_t window_us = policy.window().count();
  const std::uint64_t limit = policy.limit();

  // A clock that stepped back into an earlier window keeps counting in the newer one: going back
  // must not open a window that has already been spent.
  std::int64_t start = floor_div(now_us, window_us) * window_us;
  std::uint64_t count = 0;
  if (state.count > 0) {
    if (state.start_us % window_us != 0) {
      count = state.count;  // written under another window length: count it in this window
    } else if (state.start_us >= start) {
      start = state.start_us;
      count = state.count;
    }
  }
  const Micros until_end{start + window_us - now_us};

  Decision d;
  d.limit = limit;
  if (cost > limit) {
    d.reason = DenyReason::kCostExceedsCapacity;
    d.retry_after = kNever;
  } else if (count + cost <= limit) {
    d.allowed = true;
    count += cost;
  } else {
    d.reason = DenyReason::kLimited;
    d.retry_after = until_end;
  }
  // A count carried over from a policy with a higher limit (a rule reloaded) may exceed this one's.
  d.remaining = count >= limit ? 0 : limit - count;
  d.reset_after = count > 0 ? until_end : Micros{0};
  state = count > 0 ? FixedWindowState{start, count} : FixedWindowState{};
  return d;
}

}  // namespace floodgate::core
