// File: observe/metrics.h
//
// Metrics: the counters and histograms floodgate exposes at GET /metrics in the Prometheus text
// format (version 0.0.4). Every metric name is defined once, in metrics.cc.
//
// Counters are striped: each thread adds to the stripe it was given (its own cache line on a
// machine with up to kStripes threads), and render() sums the stripes, so recording a decision
// never makes two threads fight over a cache line.
//
// Thread-safety: record_*() may be called from any thread. rule_slot() and render() take a mutex;
// call rule_slot() when rules are loaded, not per request.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "floodgate/clock.h"
#include "floodgate/policy.h"

namespace floodgate::observe {

// append_label_value(): a label value in the text format, with backslash, double quote and
// newline escaped.
void append_label_value(std::string& out, std::string_view value);

class Metrics {
 public:
  static constexpr std::array<double, 12> kLatencyBuckets = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1};
  // Rules beyond this many distinct names share the last slot, labelled "other".
  static constexpr int kMaxRules = 128;
  static constexpr int kNoRule = -1;

  explicit Metrics(std::string version = "");
  ~Metrics();

  void record_http(int status);
  // record_decision(): `rule_slot` from rule_slot(), or kNoRule for an inline policy; `degraded`
  // when the decision came from a failure mode rather than the store.
  void record_decision(Algorithm algorithm, int rule_slot, bool allowed, Micros took,
                       bool degraded = false);

  // record_listed(): a check the allowlist (allowed) or the blocklist answered, store untouched.
  void record_listed(bool allowed);

  // rule_slot(): the counter slot of a rule name, the same one for the life of the process (so
  // counters survive reloads).
  int rule_slot(const std::string& rule_name);

  // Totals: decisions since the start, as GET /admin/stats shows them.
  struct RuleTotals {
    std::string rule;  // "(inline)": checks that named no rule
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t degraded = 0;
  };
  struct Totals {
    std::uint64_t allowed = 0;
    std::uint64_t denied = 0;
    std::uint64_t degraded = 0;
    std::uint64_t allowlisted = 0;
    std::uint64_t blocklisted = 0;
    std::vector<RuleTotals> rules;  // rules with decisions, then "(inline)" when it has any
  };
  Totals totals() const;

  // render(): the exposition text; `keys` is the store's current key count.
  std::string render(std::size_t keys, std::string_view store) const;

 private:
  struct Stripe;
  static constexpr std::size_t kStripes = 16;
  Stripe& stripe();

  std::unique_ptr<Stripe[]> stripes_;
  mutable std::mutex rules_mu_;
  std::vector<std::string> rule_names_;  // guarded by rules_mu_; index = slot
  std::string version_;
};

}  // namespace floodgate::observe
