// File: core/sliding_window_log.h
//
// sliding_window_log: exact. One entry per admitted request (entries admitted in the same
// microsecond are merged), and a request of cost n passes when the cost admitted in the last
// `window` plus n is at most `limit`. An entry stops counting `window` after it was admitted.
// Memory per key is bounded by the limit (every entry holds at least one unit of cost), which is
// why this algorithm's limit is capped at kMaxLogLimit.
#pragma once

#include <cstdint>

#include <boost/circular_buffer.hpp>

#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::core {

struct LogEntry {
  std::int64_t at_us;
  std::uint64_t count;
};

// SlidingLog: the entries of one key, oldest first, and their sum.
//
// Not thread-safe; the store serializes access per key.
class SlidingLog {
 public:
  bool empty() const { return entries_.empty(); }
  std::uint64_t total() const { return total_; }
  std::size_t entry_count() const { return entries_.size(); }
  // memory_bytes(): heap bytes held, for the store's accounting.
  std::size_t memory_bytes() const { return entries_.capacity() * sizeof(LogEntry); }
  const boost::circular_buffer<LogEntry>& entries() const { return entries_; }

 private:
  friend Decision decide_sliding_log(const Policy&, SlidingLog&, std::int64_t, std::uint64_t);

  void expire_through(std::int64_t cutoff_us);
  void append(std::int64_t at_us, std::uint64_t count, std::uint64_t limit);

  boost::circular_buffer<LogEntry> entries_;
  std::uint64_t total_ = 0;
  std::int64_t latest_us_ = 0;  // the latest moment this log has seen; meaningful while non-empty
};

Decision decide_sliding_log(const Policy& policy, SlidingLog& log, std::int64_t now_us,
                            std::uint64_t cost);

}  // namespace floodgate::core
