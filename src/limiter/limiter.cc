#include "floodgate/limiter.h"

#include <atomic>
#include <thread>

namespace floodgate {
namespace {

// Waits for one completion without a mutex. complete() may run on another thread and the waiter
// may return (and destroy this object) as soon as it sees kDone, so complete() touches nothing
// after publishing kDone.
class BlockingCompletion final : public Completion {
 public:
  void complete() override {
    state_.store(kSignalled, std::memory_order_release);
    state_.notify_one();
    state_.store(kDone, std::memory_order_release);
  }

  void wait() {
    for (int s = state_.load(std::memory_order_acquire); s != kDone;
         s = state_.load(std::memory_order_acquire)) {
      if (s == kPending) {
        state_.wait(kPending, std::memory_order_acquire);
      } else {
        std::this_thread::yield();  // complete() is between notify_one() and its last store
      }
    }
  }

 private:
  static constexpr int kPending = 0;
  static constexpr int kSignalled = 1;
  static constexpr int kDone = 2;
  std::atomic<int> state_{kPending};
};

}  // namespace

Outcome Limiter::check(std::string_view key, const Policy& policy, std::uint64_t cost) {
  const CheckOp op{key, &policy, cost};
  Outcome outcome;
  BlockingCompletion done;
  store_.check({&op, 1}, {&outcome, 1}, done);
  done.wait();
  return outcome;
}

Outcome Limiter::check(std::string_view key, const Policy& policy, std::uint64_t cost,
                       FailureMode mode) {
  Outcome outcome = check(key, policy, cost);
  settle(CheckOp{key, &policy, cost}, outcome, mode);
  return outcome;
}

void Limiter::settle(const CheckOp& op, Outcome& outcome, FailureMode mode) const {
  if (outcome.status == StoreStatus::kOk) return;
  const Policy& policy = *op.policy;
  if (mode == FailureMode::kLocal && local_ != nullptr) {
    Outcome local;
    BlockingCompletion done;
    local_->check({&op, 1}, {&local, 1}, done);
    done.wait();
    if (local.status == StoreStatus::kOk) {
      outcome.decision = local.decision;
      outcome.degraded = true;
      return;
    }
    mode = FailureMode::kFailOpen;
  }
  Decision d;
  d.limit = policy.limit();
  if (op.cost > policy.limit()) {  // a fact of the policy, whatever the store's state
    d.reason = DenyReason::kCostExceedsCapacity;
    d.retry_after = kNever;
  } else if (mode == FailureMode::kFailClosed) {
    d.reason = DenyReason::kStoreUnavailable;
    d.retry_after = std::chrono::seconds(1);
  } else {
    d.allowed = true;
    d.remaining = policy.limit();
  }
  outcome.decision = d;
  outcome.degraded = true;
}

}  // namespace floodgate
