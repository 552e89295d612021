// File: floodgate/clock.h
//
// Time in floodgate is integer microseconds since the Unix epoch, carried in `Micros`. It is never
// a double: a double loses sub-millisecond precision after days of uptime, an int64 of microseconds
// stays exact for 292,000 years. Every component that needs the time is handed a `Clock`, so tests
// run on simulated time (`ManualClock`) and never sleep.
//
// Example:
//   floodgate::ManualClock clock(floodgate::Micros{1'700'000'000'000'000});
//   clock.advance(std::chrono::seconds(2));
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace floodgate {

// Micros: a duration, or a point in time counted from the Unix epoch.
using Micros = std::chrono::microseconds;

// kNever: "no amount of waiting helps" (a cost above capacity, a bucket that never refills).
inline constexpr Micros kNever = Micros::max();

// Clock
//
// The source of "now" for a store. Wall-clock time, because fixed and sliding windows are aligned
// to the Unix epoch so that every instance and every store agree on where a window starts. Wall
// clocks may step backwards; the algorithms tolerate that (a backwards step never creates
// capacity).
//
// Thread-safety: now() may be called from any thread concurrently.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Micros now() const = 0;
};

// SystemClock: the real wall clock (CLOCK_REALTIME).
class SystemClock final : public Clock {
 public:
  Micros now() const override;
};

// system_clock(): one process-wide SystemClock, for defaults.
const Clock& system_clock();

// ManualClock: a clock that moves only when told to. For tests and simulations.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Micros start = Micros{0}) : now_us_(start.count()) {}

  Micros now() const override { return Micros{now_us_.load(std::memory_order_acquire)}; }
  void set(Micros t) { now_us_.store(t.count(), std::memory_order_release); }
  // advance(): moves the clock by `d`, which may be negative to simulate a step backwards.
  void advance(Micros d) { now_us_.fetch_add(d.count(), std::memory_order_acq_rel); }

 private:
  std::atomic<std::int64_t> now_us_;
};

}  // namespace floodgate
