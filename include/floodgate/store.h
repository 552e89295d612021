// File: floodgate/store.h
//
// The Store seam: where the state behind decisions lives. The memory store answers inline from
// per-shard hash maps; the Redis stores answer later, from an I/O thread, after one pipelined round
// trip. One interface serves both: a batch of checks goes in, the caller's outcome slots are
// filled, and a completion fires exactly once.
//
// Example (a store that may answer later):
//   struct Done final : floodgate::Completion {
//     void complete() override { /* outcomes are filled: encode and reply */ }
//   };
//   store.check(ops, outcomes, done);  // may call done.complete() before returning
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate {

// CheckOp: one question to a store. `key` and `*policy` are borrowed until the batch completes.
// A cost of 0 peeks: the decision shows the key's state and consumes nothing.
struct CheckOp {
  std::string_view key;
  const Policy* policy = nullptr;
  std::uint64_t cost = 1;
};

// StoreStatus: whether the store could decide at all. Anything but kOk means `decision` is empty
// and the caller applies its failure mode (fail_open, fail_closed, local).
enum class StoreStatus : std::uint8_t {
  kOk,
  kUnavailable,  // not connected, circuit open, or the server answered with an error
  kTimeout,      // no answer within the store's per-call timeout
};

std::string_view to_string(StoreStatus status);

struct Outcome {
  StoreStatus status = StoreStatus::kOk;
  // degraded: the decision did not come from the shared store (Limiter::settle() applied a
  // failure mode).
  bool degraded = false;
  Decision decision;
};

// FailureMode: what a decision is when the store cannot make it (per rule, with a global default).
enum class FailureMode : std::uint8_t {
  kFailOpen,    // allow
  kFailClosed,  // deny (reason kStoreUnavailable)
  kLocal,       // decide with the in-process memory store, under the same policy
};

std::string_view to_string(FailureMode mode);
std::optional<FailureMode> parse_failure_mode(std::string_view name);

// StoreHealth: what /ready reports.
struct StoreHealth {
  bool ready = true;
  std::string state = "ok";  // e.g. "connected", "connecting", "circuit_open", "auth_failed"
  std::string error;         // the last error, for operators; empty when none
  std::uint64_t errors = 0;  // decisions the store could not make since it started, all kinds
};

// Completion: told once that every outcome of a batch is filled in.
class Completion {
 public:
  // complete(): runs exactly once per Store::check, either inline before check() returns (the
  // memory store always does) or later on a store thread. It must not block.
  virtual void complete() = 0;

 protected:
  ~Completion() = default;
};

// Store
//
// Thread-safety: check() may be called from any number of threads at once. Checks of one key are
// linearizable: N concurrent admissions against a limit L admit exactly L.
class Store {
 public:
  virtual ~Store() = default;

  // check(): decides ops[i] into outcomes[i] for every i, then calls done.complete(). The ops are
  // independent of each other. Preconditions: outcomes.size() == ops.size(); ops, the keys and
  // policies they point to, outcomes and done stay alive until done.complete() has run.
  virtual void check(std::span<const CheckOp> ops, std::span<Outcome> outcomes,
                     Completion& done) = 0;

  // reset(): forgets the state of `key` under every algorithm, so that its next check is a fresh
  // key's (the admin API's POST /admin/reset); then done(kOk), or the status of the failure.
  // `done` runs exactly once, inline or on a store thread. Thread-safe. A store that cannot
  // reset answers kUnavailable.
  virtual void reset(std::string_view /*key*/, std::function<void(StoreStatus)> done) {
    done(StoreStatus::kUnavailable);
  }

  // name(): "memory", "redis", ... for logs and metrics.
  virtual std::string_view name() const = 0;

  // health(): whether the store can answer now. Thread-safe.
  virtual StoreHealth health() const { return {}; }

  // append_metrics(): the store's own series in the Prometheus text format (latency, errors,
  // circuit state), appended to `out`. Thread-safe.
  virtual void append_metrics(std::string& /*out*/) const {}
};

}  // namespace floodgate
