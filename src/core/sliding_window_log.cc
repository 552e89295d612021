#include "core/sliding_window_log.h"

#include <algorithm>

namespace floodgate::core {

void SlidingLog::expire_through(std::int64_t cutoff_us) {
  while (!entries_.empty() && entries_.front().at_us <= cutoff_us) {
    total_ -= entries_.front().count;
    entries_.pop_front();
  }
  if (entries_.empty() && entries_.capacity() > 8) {
    boost::circular_buffer<LogEntry>().swap(entries_);  // give an idle key's memory back
  }
}

void SlidingLog::append(std::int64_t at_us, std::uint64_t count, std::uint64_t limit) {
  total_ += count;
  if (!entries_.empty() && entries_.back().at_us == at_us) {
    entries_.back().count += count;
    return;
  }
  if (entries_.full()) {
    // Grow geometrically, never past `limit` entries: every entry holds at least one unit.
    const std::size_t grown = std::max<std::size_t>(4, entries_.capacity() * 2);
    entries_.set_capacity(std::min<std::size_t>(grown, limit));
  }
  entries_.push_back({at_us, count});
}

Decision decide_sliding_log(const Policy& policy, SlidingLog& log, std::int64_t now_us,
                            std::uint64_t cost) {
  const std::int64_t window_us = policy.window().count();
  const std::uint64_t limit = policy.limit();

  // Time never runs backwards within one log: a clock behind the latest moment the log has seen is
  // taken as that moment, so entries stay ordered and none comes back after it expired.
  const std::int64_t at = log.empty() ? now_us : std::max(now_us, log.latest_us_);
  log.latest_us_ = at;
  log.expire_through(at - window_us);

  // Time from now until a request of `n` fits: walk the oldest entries until enough has expired.
  auto wait_for = [&](std::uint64_t n) -> Micros {
    if (n > limit) return kNever;
    if (log.total_ + n <= limit) return Micros{0};
    std::uint64_t left = log.total_;
    for (const LogEntry& e : log.entries_) {
      left -= e.count;
      if (left + n <= limit) return Micros{e.at_us + window_us - now_us};
    }
    return kNever;  // unreachable: once every entry expired, left == 0 and n <= limit
  };

  Decision d;
  d.limit = limit;
  if (cost > limit) {
    d.reason = DenyReason::kCostExceedsCapacity;
    d.retry_after = kNever;
  } else if (log.total_ + cost <= limit) {
    d.allowed = true;
    if (cost > 0) log.append(at, cost, limit);
  } else {
    d.reason = DenyReason::kLimited;
    d.retry_after = wait_for(cost);
  }
  // A total carried over from a policy with a higher limit (a rule reloaded) may exceed this one's.
  d.remaining = log.total_ >= limit ? 0 : limit - log.total_;
  // Fully available once the newest entry stops counting (what wait_for(limit) would find, in
  // O(1)).
  d.reset_after = log.empty() ? Micros{0} : Micros{log.entries_.back().at_us + window_us - now_us};
  return d;
}

}  // namespace floodgate::core
