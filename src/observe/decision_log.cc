#include "observe/decision_log.h"

#include <string>

#include <fmt/format.h>
#include <boost/algorithm/string/predicate.hpp>

#include "core/json_text.h"

namespace floodgate::observe {

DecisionLog::DecisionLog(Options options) : options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = &system_clock();
}

std::optional<DecisionLog::Mode> DecisionLog::parse_mode(std::string_view text) {
  if (boost::algorithm::iequals(text, "off")) return Mode::kOff;
  if (boost::algorithm::iequals(text, "denied")) return Mode::kDenied;
  if (boost::algorithm::iequals(text, "all")) return Mode::kAll;
  return std::nullopt;
}

void DecisionLog::record(const Entry& e) {
  if (!options_.write || e.decision == nullptr) return;
  // The cap: a new second resets the count and reports what the last one dropped. Two threads
  // crossing into a second together may let a line or two past the cap; never more.
  const std::int64_t now_s = options_.clock->now().count() / 1'000'000;
  std::int64_t seen = second_.load(std::memory_order_relaxed);
  if (seen != now_s && second_.compare_exchange_strong(seen, now_s, std::memory_order_relaxed)) {
    in_second_.store(0, std::memory_order_relaxed);
    if (const std::uint64_t dropped = dropped_.exchange(0, std::memory_order_relaxed)) {
      options_.write(fmt::format(
          "decision log: {} line(s) dropped in the last second over LOG_DECISIONS_PER_SECOND={}",
          dropped, options_.per_second));
    }
  }
  if (in_second_.fetch_add(1, std::memory_order_relaxed) >= options_.per_second) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    dropped_total_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const Decision& d = *e.decision;
  std::string line;
  line.reserve(160 + e.key.size());
  auto out = std::back_inserter(line);
  fmt::format_to(out, "decision {} source={} path={} key=", d.allowed ? "allowed" : "denied",
                 e.source, e.path);
  core::append_json_string(line, e.key);
  fmt::format_to(out, " algorithm={} limit={} remaining={}", to_string(e.algorithm), d.limit,
                 d.remaining);
  if (!d.allowed) {
    if (d.retry_after == kNever) {
      line += " retry_after_ms=never";
    } else {
      fmt::format_to(out, " retry_after_ms={}", (d.retry_after.count() + 999) / 1000);
    }
    const std::string_view reason = to_string(d.reason);
    if (!reason.empty()) fmt::format_to(out, " reason={}", reason);
  }
  fmt::format_to(out, " degraded={}", e.degraded);
  if (!e.client.empty()) fmt::format_to(out, " client={}", e.client);
  options_.write(line);
}

}  // namespace floodgate::observe
