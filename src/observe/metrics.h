// File: observe/metrics.h
//
// Metrics: the counters and histograms floodgate exposes at GET /metrics in the Prometheus text
// format (version 0.0.4). Every metric name is defined once, in metrics.cc.
//
// Thread-safety: record_*() may be called from any thread; they are relaxed atomic adds.
// TODO(floodgate): per-thread counters summed at scrape time, once several HTTP threads share a
// counter hard enough for its cache line to matter.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "floodgate/clock.h"
#include "floodgate/policy.h"

namespace floodgate::observe {

class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1};

  void record_http(int status);
  void record_decision(Algorithm algorithm, bool allowed, Micros took);

  explicit Metrics(std::string version = "") : version_(std::move(version)) {}

  // render(): the exposition text; `keys` is the store's current key count.
  std::string render(std::size_t keys, std::string_view store) const;

 private:
  // HTTP status classes we count individually; anything else lands in "other".
  static constexpr std::array<int, 12> kStatuses = {200, 204, 400, 403, 404, 405,
                                                    413, 429, 431, 500, 503, 0};
  std::array<std::atomic<std::uint64_t>, kStatuses.size()> http_{};
  std::array<std::array<std::atomic<std::uint64_t>, 2>, kAlgorithmCount> decisions_{};
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> latency_buckets_{};
  std::atomic<std::uint64_t> latency_sum_us_{0};
  std::atomic<std::uint64_t> latency_count_{0};
  std::string version_;
};

}  // namespace floodgate::observe
