// File: floodgate/decision.h
//
// A Decision is the answer to "may this caller spend `cost` now?", in the same shape for every
// algorithm and every store, so fronts (HTTP, gRPC, library) encode it without knowing which
// algorithm produced it.
#pragma once

#include <cstdint>
#include <string_view>

#include "floodgate/clock.h"

namespace floodgate {

// DenyReason: why a request was refused. kNone when it was allowed.
enum class DenyReason : std::uint8_t {
  kNone,
  kLimited,              // over the limit now; retry_after says when it would pass
  kCostExceedsCapacity,  // the cost is above what the policy can ever admit; retry_after is kNever
  kStoreUnavailable,     // the shared store could not decide and the failure mode is fail_closed
};

std::string_view to_string(DenyReason reason);

// Decision
//
// Every duration is measured from the moment of the decision and is exact to the microsecond;
// fronts round up to milliseconds or seconds so a client that waits that long is never early.
struct Decision {
  bool allowed = false;
  DenyReason reason = DenyReason::kNone;
  // limit: the most a fresh key admits at once (capacity, burst, or the window's limit).
  std::uint64_t limit = 0;
  // remaining: what a request could still spend right after this decision.
  std::uint64_t remaining = 0;
  // reset_after: time until the key is back to its full limit (for windows: until the window that
  // holds the last admitted request stops counting it). kNever for a bucket that never refills.
  Micros reset_after{0};
  // retry_after: zero when allowed; when denied, the time until a request of the same cost would
  // pass, or kNever when none ever will.
  Micros retry_after{0};
  // delay: leaky_bucket only — how long to hold an admitted request so the flow leaves at the leak
  // rate (nginx limit_req without `nodelay`). Zero for every other algorithm.
  Micros delay{0};
};

}  // namespace floodgate
