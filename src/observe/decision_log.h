// File: observe/decision_log.h
//
// DecisionLog: one log line per decision (LOG_DECISIONS=denied: the denied ones; all: every one),
// for finding out after the fact who was limited, by what and when. Lines are capped per second
// (LOG_DECISIONS_PER_SECOND): under a flood the log must not become the bottleneck, so the lines
// past the cap are counted and the next second's first line says how many were dropped.
//
// A line is plain text, the key quoted as a JSON string (it is the caller's text):
//   decision denied source=http path=/v1/check key="rule/login//alice" algorithm=sliding_window_log
//   limit=5 remaining=0 retry_after_ms=41234 degraded=false client=203.0.113.7
//
// Example:
//   DecisionLog log({.mode = DecisionLog::Mode::kDenied, .per_second = 100,
//                    .write = [](std::string_view line) { spdlog::info("{}", line); }});
//   if (log.wants(d.allowed)) log.record({.source = "http", .key = key, ...});
//
// Thread-safety: wants() and record() may be called from any thread; `write` is called from the
// recording thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "floodgate/clock.h"
#include "floodgate/decision.h"
#include "floodgate/policy.h"

namespace floodgate::observe {

class DecisionLog {
 public:
  enum class Mode : std::uint8_t { kOff, kDenied, kAll };

  struct Options {
    Mode mode = Mode::kOff;
    int per_second = 100;  // lines at most per second of the clock; the rest are counted
    std::function<void(std::string_view line)> write;
    const Clock* clock = nullptr;  // null: the system clock
  };

  // One decision: views valid for the call only.
  struct Entry {
    std::string_view source = {};  // "http" or "grpc"
    std::string_view path = {};    // the endpoint, or the Envoy domain
    std::string_view key = {};
    Algorithm algorithm = Algorithm::kTokenBucket;
    const Decision* decision = nullptr;
    bool degraded = false;
    std::string_view client = {};  // the client's address; may be empty
  };

  explicit DecisionLog(Options options);

  // parse_mode(): "off", "denied" or "all", any case; nullopt otherwise.
  static std::optional<Mode> parse_mode(std::string_view text);

  bool wants(bool allowed) const {
    return options_.mode == Mode::kAll || (options_.mode == Mode::kDenied && !allowed);
  }
  void record(const Entry& entry);

  std::uint64_t dropped_total() const { return dropped_total_.load(std::memory_order_relaxed); }

 private:
  Options options_;
  std::atomic<std::int64_t> second_{0};
  std::atomic<int> in_second_{0};
  std::atomic<std::uint64_t> dropped_{0};  // in the current second, not yet reported
  std::atomic<std::uint64_t> dropped_total_{0};
};

}  // namespace floodgate::observe
