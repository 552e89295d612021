#include "observe/metrics.h"

#include <fmt/format.h>

namespace floodgate::observe {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

}  // namespace

void Metrics::record_http(int status) {
  std::size_t i = 0;
  while (i + 1 < kStatuses.size() && kStatuses[i] != status) ++i;
  http_[i].fetch_add(1, kRelaxed);
}

void Metrics::record_decision(Algorithm algorithm, bool allowed, Micros took) {
  decisions_[static_cast<std::size_t>(algorithm)][allowed ? 0 : 1].fetch_add(1, kRelaxed);
  const double seconds = static_cast<double>(took.count()) / 1e6;
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
  latency_buckets_[b].fetch_add(1, kRelaxed);
  latency_sum_us_.fetch_add(static_cast<std::uint64_t>(took.count()), kRelaxed);
  latency_count_.fetch_add(1, kRelaxed);
}

std::string Metrics::render(std::size_t keys, std::string_view store) const {
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP floodgate_build_info Build information.\n"
                 "# TYPE floodgate_build_info gauge\n"
                 "floodgate_build_info{{version=\"{}\",store=\"{}\"}} 1\n",
                 version_, store);

  fmt::format_to(it,
                 "# HELP floodgate_http_requests_total HTTP requests answered, by status code.\n"
                 "# TYPE floodgate_http_requests_total counter\n");
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    const std::string code = kStatuses[i] == 0 ? "other" : std::to_string(kStatuses[i]);
    fmt::format_to(it, "floodgate_http_requests_total{{code=\"{}\"}} {}\n", code,
                   http_[i].load(kRelaxed));
  }

  fmt::format_to(
      it,
      "# HELP floodgate_decisions_total Rate-limit decisions, by algorithm and outcome.\n"
      "# TYPE floodgate_decisions_total counter\n");
  for (int a = 0; a < kAlgorithmCount; ++a) {
    const auto& d = decisions_[static_cast<std::size_t>(a)];
    const auto name = to_string(static_cast<Algorithm>(a));
    fmt::format_to(it, "floodgate_decisions_total{{algorithm=\"{}\",outcome=\"allowed\"}} {}\n",
                   name, d[0].load(kRelaxed));
    fmt::format_to(it, "floodgate_decisions_total{{algorithm=\"{}\",outcome=\"denied\"}} {}\n",
                   name, d[1].load(kRelaxed));
  }

  fmt::format_to(it,
                 "# HELP floodgate_check_duration_seconds Time to decide one check.\n"
                 "# TYPE floodgate_check_duration_seconds histogram\n");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < kLatencyBuckets.size(); ++b) {
    cumulative += latency_buckets_[b].load(kRelaxed);
    fmt::format_to(it, "floodgate_check_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                   kLatencyBuckets[b], cumulative);
  }
  cumulative += latency_buckets_.back().load(kRelaxed);
  fmt::format_to(it, "floodgate_check_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  fmt::format_to(it, "floodgate_check_duration_seconds_sum {}\n",
                 static_cast<double>(latency_sum_us_.load(kRelaxed)) / 1e6);
  fmt::format_to(it, "floodgate_check_duration_seconds_count {}\n", latency_count_.load(kRelaxed));

  fmt::format_to(it,
                 "# HELP floodgate_keys Keys the store holds state for.\n"
                 "# TYPE floodgate_keys gauge\n"
                 "floodgate_keys {}\n",
                 keys);
  return out;
}

}  // namespace floodgate::observe
