#include "observe/metrics.h"

#include <fmt/format.h>

namespace floodgate::observe {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

// HTTP statuses counted individually; anything else lands in the last, "other".
constexpr std::array<int, 12> kStatuses = {200, 204, 400, 403, 404, 405,
                                           413, 429, 431, 500, 503, 0};

using Counter = std::atomic<std::uint64_t>;

std::string label(std::string_view value) {
  std::string out;
  append_label_value(out, value);
  return out;
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

struct alignas(64) Metrics::Stripe {
  std::array<Counter, kStatuses.size()> http{};
  std::array<std::array<Counter, 2>, kAlgorithmCount> decisions{};
  std::array<std::array<Counter, 2>, kMaxRules> rule_decisions{};
  std::array<Counter, kMaxRules> rule_degraded{};
  std::array<Counter, kLatencyBuckets.size() + 1> latency_buckets{};
  Counter latency_sum_us{0};
  Counter latency_count{0};
  std::array<Counter, 2> degraded{};
  std::array<Counter, 2> listed{};  // allowlist, blocklist
};

Metrics::Metrics(std::string version)
    : stripes_(std::make_unique<Stripe[]>(kStripes)), version_(std::move(version)) {}

Metrics::~Metrics() = default;

Metrics::Stripe& Metrics::stripe() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, kRelaxed) % kStripes;
  return stripes_[mine];
}

int Metrics::rule_slot(const std::string& rule_name) {
  std::lock_guard lock(rules_mu_);
  for (std::size_t i = 0; i < rule_names_.size(); ++i) {
    if (rule_names_[i] == rule_name) return static_cast<int>(i);
  }
  if (rule_names_.size() + 1 < kMaxRules) {
    rule_names_.push_back(rule_name);
    return static_cast<int>(rule_names_.size() - 1);
  }
  return kMaxRules - 1;  // "other"
}

void Metrics::record_http(int status) {
  std::size_t i = 0;
  while (i + 1 < kStatuses.size() && kStatuses[i] != status) ++i;
  stripe().http[i].fetch_add(1, kRelaxed);
}

void Metrics::record_decision(Algorithm algorithm, int rule_slot, bool allowed, Micros took,
                              bool degraded) {
  Stripe& s = stripe();
  const std::size_t outcome = allowed ? 0 : 1;
  if (degraded) s.degraded[outcome].fetch_add(1, kRelaxed);
  s.decisions[static_cast<std::size_t>(algorithm)][outcome].fetch_add(1, kRelaxed);
  if (rule_slot >= 0 && rule_slot < kMaxRules) {
    s.rule_decisions[static_cast<std::size_t>(rule_slot)][outcome].fetch_add(1, kRelaxed);
    if (degraded) s.rule_degraded[static_cast<std::size_t>(rule_slot)].fetch_add(1, kRelaxed);
  }
  const double seconds = static_cast<double>(took.count()) / 1e6;
  std::size_t b = 0;
  while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
  s.latency_buckets[b].fetch_add(1, kRelaxed);
  s.latency_sum_us.fetch_add(static_cast<std::uint64_t>(took.count()), kRelaxed);
  s.latency_count.fetch_add(1, kRelaxed);
}

void Metrics::record_listed(bool allowed) {
  stripe().listed[allowed ? 0 : 1].fetch_add(1, kRelaxed);
}

Metrics::Totals Metrics::totals() const {
  auto sum = [this](auto pick) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kStripes; ++i) total += pick(stripes_[i]).load(kRelaxed);
    return total;
  };
  Totals t;
  for (std::size_t a = 0; a < kAlgorithmCount; ++a) {
    t.allowed += sum([a](const Stripe& s) -> const Counter& { return s.decisions[a][0]; });
    t.denied += sum([a](const Stripe& s) -> const Counter& { return s.decisions[a][1]; });
  }
  t.degraded = sum([](const Stripe& s) -> const Counter& { return s.degraded[0]; }) +
               sum([](const Stripe& s) -> const Counter& { return s.degraded[1]; });
  t.allowlisted = sum([](const Stripe& s) -> const Counter& { return s.listed[0]; });
  t.blocklisted = sum([](const Stripe& s) -> const Counter& { return s.listed[1]; });
  std::vector<std::string> names;
  {
    std::lock_guard lock(rules_mu_);
    names = rule_names_;
  }
  RuleTotals inline_checks{"(inline)", t.allowed, t.denied, t.degraded};
  for (std::size_t r = 0; r < kMaxRules; ++r) {
    RuleTotals rt;
    rt.rule = r < names.size() ? names[r] : r == kMaxRules - 1 ? "other" : "";
    rt.allowed = sum([r](const Stripe& s) -> const Counter& { return s.rule_decisions[r][0]; });
    rt.denied = sum([r](const Stripe& s) -> const Counter& { return s.rule_decisions[r][1]; });
    rt.degraded = sum([r](const Stripe& s) -> const Counter& { return s.rule_degraded[r]; });
    if (rt.allowed + rt.denied == 0 || rt.rule.empty()) continue;
    inline_checks.allowed -= std::min(inline_checks.allowed, rt.allowed);
    inline_checks.denied -= std::min(inline_checks.denied, rt.denied);
    inline_checks.degraded -= std::min(inline_checks.degraded, rt.degraded);
    t.rules.push_back(std::move(rt));
  }
  if (inline_checks.allowed + inline_checks.denied > 0) t.rules.push_back(inline_checks);
  return t;
}

std::string Metrics::render(std::size_t keys, std::string_view store) const {
  // sum(): one counter added up over every stripe.
  auto sum = [this](auto pick) {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < kStripes; ++i) total += pick(stripes_[i]).load(kRelaxed);
    return total;
  };

  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP floodgate_build_info Build information.\n"
                 "# TYPE floodgate_build_info gauge\n"
                 "floodgate_build_info{{version=\"{}\",store=\"{}\"}} 1\n",
                 label(version_), label(store));

  fmt::format_to(it,
                 "# HELP floodgate_http_requests_total HTTP requests answered, by status code.\n"
                 "# TYPE floodgate_http_requests_total counter\n");
  for (std::size_t i = 0; i < kStatuses.size(); ++i) {
    const std::string code = kStatuses[i] == 0 ? "other" : std::to_string(kStatuses[i]);
    fmt::format_to(it, "floodgate_http_requests_total{{code=\"{}\"}} {}\n", code,
                   sum([i](const Stripe& s) -> const Counter& { return s.http[i]; }));
  }

  fmt::format_to(
      it,
      "# HELP floodgate_decisions_total Rate-limit decisions, by algorithm and outcome.\n"
      "# TYPE floodgate_decisions_total counter\n");
  for (std::size_t a = 0; a < kAlgorithmCount; ++a) {
    const auto name = to_string(static_cast<Algorithm>(a));
    for (std::size_t o = 0; o < 2; ++o) {
      fmt::format_to(it, "floodgate_decisions_total{{algorithm=\"{}\",outcome=\"{}\"}} {}\n", name,
                     o == 0 ? "allowed" : "denied",
                     sum([a, o](const Stripe& s) -> const Counter& { return s.decisions[a][o]; }));
    }
  }

  fmt::format_to(it,
                 "# HELP floodgate_decisions_degraded_total Decisions made by a failure mode "
                 "because the store could not answer, by outcome.\n"
                 "# TYPE floodgate_decisions_degraded_total counter\n");
  for (std::size_t o = 0; o < 2; ++o) {
    fmt::format_to(it, "floodgate_decisions_degraded_total{{outcome=\"{}\"}} {}\n",
                   o == 0 ? "allowed" : "denied",
                   sum([o](const Stripe& s) -> const Counter& { return s.degraded[o]; }));
  }

  fmt::format_to(it,
                 "# HELP floodgate_decisions_listed_total Checks the allowlist (allowed) or the "
                 "blocklist (denied) answered without asking the store.\n"
                 "# TYPE floodgate_decisions_listed_total counter\n");
  for (std::size_t l = 0; l < 2; ++l) {
    fmt::format_to(it, "floodgate_decisions_listed_total{{list=\"{}\"}} {}\n",
                   l == 0 ? "allowlist" : "blocklist",
                   sum([l](const Stripe& s) -> const Counter& { return s.listed[l]; }));
  }

  {
    std::lock_guard lock(rules_mu_);
    fmt::format_to(it,
                   "# HELP floodgate_rule_decisions_total Decisions of named rules, by rule and "
                   "outcome.\n"
                   "# TYPE floodgate_rule_decisions_total counter\n");
    for (std::size_t r = 0; r < rule_names_.size(); ++r) {
      for (std::size_t o = 0; o < 2; ++o) {
        fmt::format_to(
            it, "floodgate_rule_decisions_total{{rule=\"{}\",outcome=\"{}\"}} {}\n",
            label(rule_names_[r]), o == 0 ? "allowed" : "denied",
            sum([r, o](const Stripe& s) -> const Counter& { return s.rule_decisions[r][o]; }));
      }
    }
  }

  fmt::format_to(it,
                 "# HELP floodgate_check_duration_seconds Time to decide one check.\n"
                 "# TYPE floodgate_check_duration_seconds histogram\n");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b <= kLatencyBuckets.size(); ++b) {
    cumulative += sum([b](const Stripe& s) -> const Counter& { return s.latency_buckets[b]; });
    if (b < kLatencyBuckets.size()) {
      fmt::format_to(it, "floodgate_check_duration_seconds_bucket{{le=\"{}\"}} {}\n",
                     kLatencyBuckets[b], cumulative);
    } else {
      fmt::format_to(it, "floodgate_check_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
    }
  }
  fmt::format_to(
      it, "floodgate_check_duration_seconds_sum {}\n",
      static_cast<double>(sum([](const Stripe& s) -> const Counter& { return s.latency_sum_us; })) /
          1e6);
  fmt::format_to(it, "floodgate_check_duration_seconds_count {}\n",
                 sum([](const Stripe& s) -> const Counter& { return s.latency_count; }));

  fmt::format_to(it,
                 "# HELP floodgate_keys Keys the store holds state for.\n"
                 "# TYPE floodgate_keys gauge\n"
                 "floodgate_keys {}\n",
                 keys);
  return out;
}

}  // namespace floodgate::observe
