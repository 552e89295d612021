// Test harness: a memory store on a ManualClock that starts at a day boundary, so every window
// used in tests (second, minute, hour, day) starts exactly at kStart.
#pragma once

#include <chrono>
#include <string_view>

#include "floodgate/clock.h"
#include "floodgate/decision.h"
#include "floodgate/memory_store.h"
#include "floodgate/policy.h"

namespace floodgate::testing {

using namespace std::chrono_literals;

// 2027-01-15T00:00:00Z: a whole number of days since the epoch.
inline constexpr Micros kStart = std::chrono::hours(24) * 20833;

struct Harness {
  ManualClock clock{kStart};
  MemoryStore store{clock};

  Decision check(const Policy& policy, std::uint64_t cost = 1, std::string_view key = "key") {
    return store.check(key, policy, cost);
  }
  void advance(Micros d) { clock.advance(d); }
  // spend(): `n` checks of cost 1; returns how many were allowed.
  int spend(const Policy& policy, int n, std::string_view key = "key") {
    int allowed = 0;
    for (int i = 0; i < n; ++i) allowed += check(policy, 1, key).allowed ? 1 : 0;
    return allowed;
  }
};

}  // namespace floodgate::testing
