// File: core/debt_meter.h
//
// token_bucket, gcra and leaky_bucket are one machine seen from three sides: a "debt" that grows by
// `interval` ticks per unit of cost admitted and drains by `ticks_per_us` ticks per microsecond. A
// request of cost n passes when debt + n * interval <= limit * interval.
//   - token_bucket: tokens = limit - debt / interval; the bucket starts full (debt 0).
//   - gcra: debt is the theoretical arrival time minus now (redis-cell's TAT), with burst = limit,
//     so a fresh key admits exactly `burst` at once.
//   - leaky_bucket: debt / interval is the meter's level; an admitted request is delayed by the
//   time
//     the level ahead of it takes to leak out.
//
// Ticks are chosen per policy (Policy::ticks_per_us) so that limit * interval stays below 2^50:
// a debt fits the 50 bits the Redis scripts pack it in, every value fits a Lua double exactly, and
// rates keep a relative precision better than 2e-6.
// ticks_per_us == 0 is a bucket that never refills.
#pragma once

#include <cstdint>

#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::core {

struct DebtState {
  std::int64_t debt = 0;      // ticks, 0 <= debt <= limit * interval
  std::int64_t stamp_us = 0;  // when `debt` was last brought up to date; never moves backwards
};

// decide_debt(): the decision for `cost` at `now_us`; updates `state` (ages it even when denied).
Decision decide_debt(const Policy& policy, DebtState& state, std::int64_t now_us,
                     std::uint64_t cost);

}  // namespace floodgate::core
