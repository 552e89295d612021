// File: floodgate/limiter.h
//
// Limiter: the library's front door. It takes a key, a policy and a cost, asks a Store, and returns
// the store's outcome. Fronts (HTTP, gRPC, an application's own middleware) talk to a Limiter,
// never to a store directly, so the store can change (memory, Redis, Redis Cluster) without them
// noticing.
//
// Example:
//   floodgate::SystemClock clock;
//   floodgate::MemoryStore store(clock);
//   floodgate::Limiter limiter(store);
//   auto per_user = floodgate::Policy::token_bucket(/*capacity=*/10, /*refill_rate=*/0.5).value();
//   floodgate::Outcome o = limiter.check("user:42", per_user);
//   if (!o.decision.allowed) reply_429(o.decision.retry_after);
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "floodgate/decision.h"
#include "floodgate/policy.h"
#include "floodgate/store.h"

namespace floodgate {

class Limiter {
 public:
  // `store` is borrowed and must outlive the limiter. `local` (borrowed, may be null) answers for
  // FailureMode::kLocal when `store` cannot; it must complete inline (a MemoryStore does).
  explicit Limiter(Store& store, Store* local = nullptr) : store_(store), local_(local) {}

  // check(): blocks until the store answers; returns at once when the store completes inline
  // (the memory store always does). Must not be called on a thread the store completes on (a
  // network store's I/O thread): use check_async() there. Thread-safe.
  Outcome check(std::string_view key, const Policy& policy, std::uint64_t cost = 1);

  // check_async(): hands a batch to the store; see Store::check for the contract.
  void check_async(std::span<const CheckOp> ops, std::span<Outcome> outcomes, Completion& done) {
    store_.check(ops, outcomes, done);
  }

  // settle(): the decision for `op` when `outcome` failed (status != kOk), by `mode`, marked
  // degraded; an outcome that succeeded is left as it is. fail_open allows with the policy's whole
  // limit remaining; fail_closed denies with reason kStoreUnavailable and a one-second retry;
  // local asks the local store (fail_open when there is none).
  void settle(const CheckOp& op, Outcome& outcome, FailureMode mode) const;

  // check(), then settle() by `mode`: the front door for a front that has a failure mode.
  Outcome check(std::string_view key, const Policy& policy, std::uint64_t cost, FailureMode mode);

  Store& store() const { return store_; }

 private:
  Store& store_;
  Store* local_;
};

}  // namespace floodgate
