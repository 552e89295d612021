// File: core/decide.h
//
// The one entry point stores call: decide(policy, state, now, cost) -> Decision, pure and
// allocation-free (but for a sliding log growing its buffer). Stores keep a 16-byte CompactState
// per key for every algorithm except sliding_window_log, which has its own SlidingLog.
//
// Keys of different algorithms never share state (stores hash the algorithm into the key), so a
// CompactState is always read back as the algorithm that wrote it.
#pragma once

#include <cstdint>

#include "core/sliding_window_log.h"
#include "floodgate/clock.h"
#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::core {

// CompactState: 16 opaque bytes; all zeros is a fresh key for every algorithm.
struct CompactState {
  std::int64_t word0 = 0;
  std::int64_t word1 = 0;

  bool is_fresh() const { return word0 == 0 && word1 == 0; }
};

// decide(): precondition: policy.algorithm() != kSlidingWindowLog.
//
// From now + decision.reset_after on (never, for kNever) the state left behind decides exactly
// as a fresh key's would, so a store may forget the key then.
Decision decide(const Policy& policy, CompactState& state, Micros now, std::uint64_t cost);
Decision decide(const Policy& policy, SlidingLog& log, Micros now, std::uint64_t cost);

}  // namespace floodgate::core
