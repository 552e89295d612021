#include "core/debt_meter.h"

#include <algorithm>

#include "core/arith.h"

namespace floodgate::core {
Decision decide_debt(const Policy& policy, DebtState& state, std::int64_t now_us,
                     std::uint64_t cost) {
  const std::int64_t per_us = policy.ticks_per_us();
  const std::int64_t interval = policy.interval();
  const auto limit = static_cast<std::int64_t>(policy.limit());
  const std::int64_t tolerance = limit * interval;

  // Bring the debt up to `now`. A clock behind the stamp drains nothing: time counts only once it
  // passes the latest moment this key has seen, so a backwards step never creates capacity.
  // Debt written under another policy (a rule changed on reload) is clamped into this one's
  // range: the key stays as used up as it can be, never beyond.
  std::int64_t debt = std::clamp<std::int64_t>(state.debt, 0, tolerance);
  std::int64_t at = state.stamp_us;
  if (now_us > at) {
    std::int64_t drained = 0;
    if (per_us > 0 && debt > 0) {
      const bool overflow = __builtin_mul_overflow(now_us - at, per_us, &drained);
      debt = (overflow || drained >= debt) ? 0 : debt - drained;
    }
    at = now_us;
  }
  const std::int64_t lag = at - now_us;  // > 0 only after the clock stepped back

  // Time from now until the debt has drained to `target`.
  auto wait_until = [&](std::int64_t target) -> Micros {
    if (debt <= target) return Micros{0};
    if (per_us == 0) return kNever;
    return Micros{lag + ceil_div(debt - target, per_us)};
  };

  Decision d;
  d.limit = policy.limit();
  if (cost > policy.limit()) {
    d.reason = DenyReason::kCostExceedsCapacity;
    d.retry_after = kNever;
  } else {
    const std::int64_t need = static_cast<std::int64_t>(cost) * interval;
    if (debt + need <= tolerance) {
      d.allowed = true;
      if (policy.algorithm() == Algorithm::kLeakyBucket) d.delay = wait_until(0);
      debt += need;
    } else {
      d.reason = DenyReason::kLimited;
      d.retry_after = wait_until(tolerance - need);
    }
  }
  d.remaining = static_cast<std::uint64_t>((tolerance - debt) / interval);
  d.reset_after = wait_until(0);
  // A drained meter is forgotten entirely, stamp included: a fresh key has no past.
  state = debt == 0 ? DebtState{} : DebtState{debt, at};
  return d;
}

}  // namespace floodgate::core
