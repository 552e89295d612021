// File: admin/stats.h
//
// Stats: what GET /admin/stats, /admin/events and the dashboard show of this instance's recent
// decisions: allowed and denied per second over the last five minutes, the check latency's p50
// and p99 over the last minute, and the top denied keys over the last five minutes (TopKeys, in
// fixed memory). Totals since the start are the metrics' (observe::Metrics).
//
// record() is on the hot path of every decision. Like the metrics, its counters are striped: each
// thread adds to its own stripe (a ring of per-second counters and a ring of 10-second latency
// histograms), so threads never fight over a cache line; readers sum the stripes. A stripe slot
// is claimed for a new second (or 10 s) by the first record() that sees it stale: counts made
// by another thread of the same stripe in that instant may be lost, which a dashboard can bear.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "admin/top_keys.h"
#include "floodgate/clock.h"

namespace floodgate::admin {

// CoarseClock: wall time to the kernel's tick (CLOCK_REALTIME_COARSE, a few milliseconds): all a
// per-second count needs, for a fraction of what a precise read costs on the hot path.
class CoarseClock final : public Clock {
 public:
  Micros now() const override;
};

class Stats {
 public:
  static constexpr int kHistorySeconds = 300;

  // `clock`: wall time (seconds label the history). Borrowed.
  explicit Stats(const Clock& clock);
  ~Stats();
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  // record(): one decision of `key`, which took `took` from request to answer.
  void record(std::string_view key, bool allowed, Micros took) { record(key, allowed, &took); }
  // record(): a decision counted without its latency: one the allow or block list answered (it
  // never reached a store, and would only pull the percentiles down), or one of the Envoy rate
  // limit service's descriptors (its call's latency is its own, not a check's).
  void record(std::string_view key, bool allowed) { record(key, allowed, nullptr); }

  struct Second {
    std::int64_t t = 0;  // Unix seconds
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
  };
  // history(): the last `seconds` whole seconds before now, oldest first (empty ones included).
  std::vector<Second> history(int seconds = kHistorySeconds) const;

  struct Rate {
    double allowed = 0;  // per second
    double denied = 0;
  };
  // rate(): decisions per second over the last `seconds` whole seconds.
  Rate rate(int seconds) const;

  struct Latency {
    double p50_ms = 0;
    double p99_ms = 0;
    std::uint64_t count = 0;  // decisions measured
  };
  // latency(): over the last minute (six 10-second slots, the current one included).
  Latency latency() const { return percentiles(latency_counts()); }
  // latency_counts(): the last minute's latency histogram (buckets of bucket_floor_us()), which
  // instances publish so that a fleet's percentiles are those of the summed histograms.
  std::vector<std::uint64_t> latency_counts() const;
  static Latency percentiles(const std::vector<std::uint64_t>& counts);

  const TopKeys& top_keys() const { return top_; }

 private:
  struct Stripe;
  Stripe& stripe() const;
  void record(std::string_view key, bool allowed, const Micros* took);

  const Clock& clock_;
  std::unique_ptr<Stripe[]> stripes_;
  TopKeys top_;
};

}  // namespace floodgate::admin
