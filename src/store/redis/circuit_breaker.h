// File: store/redis/circuit_breaker.h
//
// CircuitBreaker: stops sending to a store that keeps failing, so callers get their failure mode at
// once instead of waiting out a timeout each. Closed: everything passes; `failures` consecutive
// failures open it. Open: nothing passes until `cooldown` has gone by, then exactly one call (the
// probe) passes and the breaker is half-open. The probe's success closes it; its failure opens it
// for another cooldown.
//
// Time is passed in (steady-clock microseconds), so the logic is tested without sleeping.
//
// Thread-safety: every member may be called from any thread; allow() is lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

namespace floodgate::redis {

class CircuitBreaker {
 public:
  enum class State : std::uint8_t { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

  CircuitBreaker(int failures, std::int64_t cooldown_us)
      : threshold_(failures < 1 ? 1 : failures), cooldown_us_(cooldown_us) {}

  // allow(): whether a call may go to the store now.
  bool allow(std::int64_t now_us);
  void record_success();
  void record_failure(std::int64_t now_us);

  State state() const { return state_.load(std::memory_order_acquire); }
  std::uint64_t times_opened() const { return opened_.load(std::memory_order_relaxed); }

 private:
  void open(std::int64_t now_us);

  const int threshold_;
  const std::int64_t cooldown_us_;
  std::atomic<State> state_{State::kClosed};
  std::atomic<int> consecutive_{0};
  std::atomic<std::int64_t> opened_at_us_{0};
  std::atomic<std::uint64_t> opened_{0};
};

std::string_view to_string(CircuitBreaker::State state);

}  // namespace floodgate::redis
