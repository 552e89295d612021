#include "store/redis/circuit_breaker.h"

namespace floodgate::redis {

bool CircuitBreaker::allow(std::int64_t now_us) {
  State s = state_.load(std::memory_order_acquire);
  if (s == State::kClosed) return true;
  if (s == State::kHalfOpen) return false;  // the probe is out; wait for its answer
  if (now_us - opened_at_us_.load(std::memory_order_acquire) < cooldown_us_) return false;
  // Cooldown over: whoever moves the breaker to half-open sends the probe.
  return state_.compare_exchange_strong(s, State::kHalfOpen, std::memory_order_acq_rel);
}

void CircuitBreaker::record_success() {
  consecutive_.store(0, std::memory_order_relaxed);
  if (state_.load(std::memory_order_acquire) != State::kClosed) {
    state_.store(State::kClosed, std::memory_order_release);
  }
}

void CircuitBreaker::record_failure(std::int64_t now_us) {
  State s = state_.load(std::memory_order_acquire);
  if (s == State::kHalfOpen) {
    open(now_us);  // the probe failed
    return;
  }
  if (s == State::kOpen) return;  // calls sent before it opened, failing late
  if (consecutive_.fetch_add(1, std::memory_order_acq_rel) + 1 >= threshold_) {
    // The time first: allow() must never pair the open state with an older opening's time.
    opened_at_us_.store(now_us, std::memory_order_release);
    if (state_.compare_exchange_strong(s, State::kOpen, std::memory_order_acq_rel)) {
      opened_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void CircuitBreaker::open(std::int64_t now_us) {
  opened_at_us_.store(now_us, std::memory_order_release);
  state_.store(State::kOpen, std::memory_order_release);
  opened_.fetch_add(1, std::memory_order_relaxed);
}

std::string_view to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

}  // namespace floodgate::redis
