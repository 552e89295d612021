#include "core/decide.h"

#include <bit>

#include "core/debt_meter.h"
#include "core/fixed_window.h"
#include "core/sliding_window_counter.h"

namespace floodgate::core {
namespace {

static_assert(sizeof(DebtState) == sizeof(CompactState));
static_assert(sizeof(FixedWindowState) == sizeof(CompactState));
static_assert(sizeof(SlidingCounterState) == sizeof(CompactState));

// Runs `decide_fn` on the typed view of `state` and writes the result back.
template <class Typed, class Fn>
Decision with_typed(CompactState& state, Fn decide_fn) {
  auto typed = std::bit_cast<Typed>(state);
  Decision d = decide_fn(typed);
  state = std::bit_cast<CompactState>(typed);
  return d;
}

}  // namespace

Decision decide(const Policy& policy, CompactState& state, Micros now, std::uint64_t cost) {
  const std::int64_t now_us = now.count();
  switch (policy.algorithm()) {
    case Algorithm::kTokenBucket:
    case Algorithm::kGcra:
    case Algorithm::kLeakyBucket:
      return with_typed<DebtState>(
          state, [&](DebtState& s) { return decide_debt(policy, s, now_us, cost); });
    case Algorithm::kFixedWindow:
      return with_typed<FixedWindowState>(
          state, [&](FixedWindowState& s) { return decide_fixed_window(policy, s, now_us, cost); });
    case Algorithm::kSlidingWindowCounter:
      return with_typed<SlidingCounterState>(state, [&](SlidingCounterState& s) {
        return decide_sliding_counter(policy, s, now_us, cost);
      });
    case Algorithm::kSlidingWindowLog:
      break;
  }
  // A log policy has no compact state; refusing is safer than guessing.
  Decision d;
  d.limit = policy.limit();
  d.reason = DenyReason::kCostExceedsCapacity;
  d.retry_after = kNever;
  return d;
}

Decision decide(const Policy& policy, SlidingLog& log, Micros now, std::uint64_t cost) {
  return decide_sliding_log(policy, log, now.count(), cost);
}

}  // namespace floodgate::core
