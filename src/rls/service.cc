// The answer follows envoyproxy/ratelimit step by step (src/service/ratelimit.go
// shouldRateLimitWorker, src/limiter/base_limiter.go GetResponseDescriptorStatus); where
// floodgate differs, the comment says so and why.
#include "rls/service.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/json_text.h"
#include "observe/metrics.h"

namespace floodgate::rls {

namespace {

constexpr std::uint32_t kMaxUint32 = std::numeric_limits<std::uint32_t>::max();

std::int64_t ceil_seconds(Micros d) { return (d.count() + 999'999) / 1'000'000; }

// minus(): a - b, or 0 when b is larger (statistics never wrap).
std::uint64_t minus(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : 0; }

std::uint32_t clamp32(std::uint64_t v) {
  return v > kMaxUint32 ? kMaxUint32 : static_cast<std::uint32_t>(v);
}

// The time until the current window of `unit` ends, as envoyproxy/ratelimit's CalculateReset
// counts it (windows aligned to the Unix epoch), for answers the store did not time.
Micros until_window_end(Unit unit, Micros now) {
  const auto window = std::chrono::duration_cast<Micros>(unit_duration(unit)).count();
  if (window <= 0) return Micros{0};
  const std::int64_t into = now.count() % window;
  return Micros{window - (into < 0 ? into + window : into)};
}

}  // namespace

// ---- OverLimitCache
// ------------------------------------------------------------------------------

OverLimitCache::OverLimitCache(std::size_t max_entries)
    : per_shard_(max_entries == 0 ? 0 : std::max<std::size_t>(1, max_entries / kShards)) {}

OverLimitCache::Shard& OverLimitCache::shard(std::string_view key) {
  return shards_[std::hash<std::string_view>{}(key) % kShards];
}

std::optional<OverLimitCache::TimePoint> OverLimitCache::over_until(std::string_view key,
                                                                    const Policy& limit,
                                                                    TimePoint now) {
  if (per_shard_ == 0) return std::nullopt;
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  auto it = s.entries.find(key);
  if (it == s.entries.end()) return std::nullopt;
  // An entry made under another limit (the config was reloaded) says nothing about this one.
  if (it->second.until <= now || it->second.limit != limit.limit() ||
      it->second.window != limit.window()) {
    s.entries.erase(it);
    return std::nullopt;
  }
  return it->second.until;
}

void OverLimitCache::insert(std::string_view key, const Policy& limit, TimePoint until,
                            TimePoint now) {
  if (per_shard_ == 0) return;
  Shard& s = shard(key);
  std::lock_guard lock(s.mu);
  if (s.entries.size() >= per_shard_ && !s.entries.contains(key)) {
    std::erase_if(s.entries, [&](const auto& kv) { return kv.second.until <= now; });
    // Still full: make room by dropping the entry that ends first. O(n) in the shard, only when a
    // full shard meets a new over-limit key.
    if (s.entries.size() >= per_shard_) {
      auto first = std::min_element(
          s.entries.begin(), s.entries.end(),
          [](const auto& a, const auto& b) { return a.second.until < b.second.until; });
      s.entries.erase(first);
    }
  }
  s.entries.insert_or_assign(std::string(key), Entry{until, limit.limit(), limit.window()});
}

std::size_t OverLimitCache::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.entries.size();
  }
  return n;
}

// ---- Service
// -------------------------------------------------------------------------------------

void Call::complete() { service_->finish(*this); }

Service::Service(Limiter& limiter, ServiceOptions options, std::shared_ptr<const Config> config)
    : limiter_(limiter),
      options_(std::move(options)),
      config_(std::move(config)),
      over_limit_cache_(options_.over_limit_cache_entries) {}

void Service::set_config(std::shared_ptr<const Config> config) {
  std::lock_guard lock(config_mu_);
  config_ = std::move(config);
}

std::shared_ptr<const Config> Service::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

void Service::should_rate_limit(Call& call) {
  call.service_ = this;
  call.error.reset();
  call.response = Response{};
  calls_.fetch_add(1, std::memory_order_relaxed);

  const Request& req = call.request;
  // envoyproxy/ratelimit answers these two with its own messages; we add the field's name.
  if (req.domain.empty()) {
    call.error =
        CallError{CallError::Kind::kInvalidArgument, "domain: rate limit domain must not be empty"};
    call.done();
    return;
  }
  if (req.descriptors.empty()) {
    call.error = CallError{CallError::Kind::kInvalidArgument,
                           "descriptors: rate limit descriptor list must not be empty"};
    call.done();
    return;
  }
  if (req.descriptors.size() > options_.max_descriptors) {
    call.error = CallError{CallError::Kind::kInvalidArgument,
                           fmt::format("descriptors: {} descriptors, at most {} are accepted",
                                       req.descriptors.size(), options_.max_descriptors)};
    call.done();
    return;
  }
  for (std::size_t i = 0; i < req.descriptors.size(); ++i) {
    const Descriptor& d = req.descriptors[i];
    if (d.entries.empty()) {
      call.error = CallError{CallError::Kind::kInvalidArgument,
                             fmt::format("descriptors[{}].entries: must not be empty", i)};
    } else if (d.entries.size() > options_.max_entries) {
      call.error = CallError{CallError::Kind::kInvalidArgument,
                             fmt::format("descriptors[{}].entries: {} entries, at most {} are "
                                         "accepted",
                                         i, d.entries.size(), options_.max_entries)};
    } else if (d.limit && d.limit->unit == Unit::kUnknown) {
      call.error =
          CallError{CallError::Kind::kInvalidArgument,
                    fmt::format("descriptors[{}].limit.unit: must be SECOND, MINUTE, HOUR, DAY, "
                                "MONTH or YEAR",
                                i)};
    } else {
      for (std::size_t j = 0; j < d.entries.size(); ++j) {
        if (d.entries[j].key.empty()) {
          call.error =
              CallError{CallError::Kind::kInvalidArgument,
                        fmt::format("descriptors[{}].entries[{}].key: must not be empty", i, j)};
          break;
        }
      }
    }
    if (call.error) {
      call.done();
      return;
    }
  }

  // The allow and block lists, on a descriptor entry `remote_address` (as Envoy's remote_address
  // action writes it): a listed client consumes nothing.
  if (options_.lists != nullptr && !options_.lists->empty()) {
    admin::Listed listed = admin::Listed::kNone;
    for (const Descriptor& d : req.descriptors) {
      for (const auto& entry : d.entries) {
        if (entry.key != "remote_address") continue;
        const auto ip = admin::parse_ip(entry.value);
        if (!ip) continue;
        const admin::Listed l = options_.lists->check({}, &*ip);
        if (l == admin::Listed::kBlocklisted || listed == admin::Listed::kNone) listed = l;
      }
    }
    if (listed != admin::Listed::kNone) {
      const Code code = listed == admin::Listed::kBlocklisted ? Code::kOverLimit : Code::kOk;
      DescriptorStatus st;
      st.code = code;
      call.response.statuses.assign(req.descriptors.size(), st);
      call.response.overall_code = code;
      if (options_.response_dynamic_metadata) {
        call.response.dynamic_metadata = dynamic_metadata(call, false);
      }
      if (code == Code::kOverLimit) calls_over_limit_.fetch_add(1, std::memory_order_relaxed);
      call.done();
      return;
    }
  }

  call.config_ = config();
  call.matches_ = match_all(*call.config_, req.domain, req.descriptors);
  const std::size_t n = req.descriptors.size();
  call.hits_.assign(n, 0);
  call.op_of_.assign(n, -1);
  call.keys_.resize(n);
  call.ops_.clear();
  call.ops_.reserve(n);
  call.response.statuses.assign(n, DescriptorStatus{});
  const Micros at = now();
  for (std::size_t i = 0; i < n; ++i) {
    const Descriptor& d = req.descriptors[i];
    call.hits_[i] = d.hits_addend ? *d.hits_addend : std::max<std::uint64_t>(1, req.hits_addend);
    const Match& m = call.matches_[i];
    const RateLimit* limit = m.replaced ? nullptr : m.limit();
    if (!limit || limit->unlimited || !limit->policy) continue;
    // The counter's name, apart from the HTTP API's keys, and apart per window length: a
    // request's own limit in another unit counts on its own, as envoyproxy/ratelimit's keys
    // (which end in the window's start) do.
    std::string& key = call.keys_[i];
    key.assign("rls/");
    key.append(m.storage_key);
    key.append(std::to_string(limit->policy->window().count() / 1'000'000));
    // A counter known to be over its limit until its window ends is answered from the cache.
    // Peeks (hits 0) always ask the store: they report the exact remaining count.
    if (call.hits_[i] > 0 && limit->policy->algorithm() == Algorithm::kFixedWindow &&
        over_limit_cache_.over_until(key, *limit->policy, at)) {
      continue;
    }
    call.op_of_[i] = static_cast<int>(call.ops_.size());
    call.ops_.push_back(CheckOp{key, &*limit->policy, call.hits_[i]});
  }
  call.outcomes_.assign(call.ops_.size(), Outcome{});
  if (call.ops_.empty()) {
    finish(call);
    return;
  }
  // Nothing may touch `call` after this: the store may complete before it returns.
  limiter_.check_async(call.ops_, call.outcomes_, call);
}

Service::Stats& Service::stats_for(std::string_view stats_key) {
  {
    std::shared_lock lock(stats_mu_);
    if (auto it = stats_.find(stats_key); it != stats_.end()) return *it->second;
  }
  std::unique_lock lock(stats_mu_);
  if (auto it = stats_.find(stats_key); it != stats_.end()) return *it->second;
  if (stats_.size() >= options_.max_stat_series) {
    auto& other = stats_["_other_"];
    if (!other) other = std::make_unique<Stats>();
    return *other;
  }
  return *stats_.emplace(std::string(stats_key), std::make_unique<Stats>()).first->second;
}

DescriptorStatus Service::status_for(Call& call, std::size_t i, Stats* stats) {
  const Match& m = call.matches_[i];
  const RateLimit* limit = m.limit();
  // Hits as the store is asked for them; the statistics count at most 2^40 per call, so a client's
  // absurd hits_addend cannot wrap them.
  const std::uint64_t hits = std::min<std::uint64_t>(call.hits_[i], std::uint64_t{1} << 40);
  DescriptorStatus st;
  st.current_limit = CurrentLimit{limit->requests_per_unit, limit->unit, limit->name};
  st.quota_mode = options_.global_quota_mode || limit->quota_mode;
  const std::uint64_t per_unit = limit->requests_per_unit;
  const auto near_threshold = static_cast<std::uint64_t>(
      std::floor(static_cast<float>(per_unit) * static_cast<float>(options_.near_limit_ratio)));

  bool over = false;
  bool from_cache = false;
  bool degraded = false;
  std::uint64_t before = 0;  // the counter before this request, as far as we know it
  std::uint64_t after = 0;
  if (!limit->policy) {
    // requests_per_unit 0: nothing is ever admitted (envoyproxy/ratelimit: any hit is over).
    over = hits > 0;
    after = hits;
    st.duration_until_reset = until_window_end(limit->unit, now());
  } else if (call.op_of_[i] < 0) {
    over = true;  // the over-limit cache answered
    from_cache = true;
    before = per_unit;
    st.duration_until_reset = until_window_end(limit->unit, now());
  } else {
    const auto at = static_cast<std::size_t>(call.op_of_[i]);
    const CheckOp& op = call.ops_[at];
    Outcome& outcome = call.outcomes_[at];
    limiter_.settle(op, outcome, options_.failure_mode);
    degraded = outcome.degraded;
    if (outcome.degraded) degraded_.fetch_add(1, std::memory_order_relaxed);
    const Decision& d = outcome.decision;
    over = !d.allowed;
    st.limit_remaining = clamp32(d.remaining);
    // A fresh counter has no window yet (the store reports 0): answer the unit's, as envoyproxy/
    // ratelimit does.
    st.duration_until_reset = d.reset_after > Micros{0} && d.reset_after != kNever
                                  ? d.reset_after
                                  : until_window_end(limit->unit, now());
    const std::uint64_t used = d.limit > d.remaining ? d.limit - d.remaining : 0;
    before = d.allowed ? used - std::min(used, hits) : used;
    after = before + hits;
    if (over && !outcome.degraded && d.remaining == 0 && d.reason == DenyReason::kLimited &&
        op.policy->algorithm() == Algorithm::kFixedWindow && d.retry_after != kNever) {
      const Micros t = now();
      over_limit_cache_.insert(op.key, *op.policy, t + d.retry_after, t);
    }
  }
  if (over) st.limit_remaining = 0;
  st.code = over ? Code::kOverLimit : Code::kOk;
  if (options_.admin_stats != nullptr) {
    options_.admin_stats->record(call.keys_[i].empty() ? m.storage_key : call.keys_[i], !over);
  }
  if (options_.decision_log != nullptr && options_.decision_log->wants(!over)) {
    // The descriptor's decision as the answer reports it (before shadow mode turns it OK).
    Decision logged;
    logged.allowed = !over;
    logged.reason = over ? DenyReason::kLimited : DenyReason::kNone;
    logged.limit = per_unit;
    logged.remaining = st.limit_remaining;
    logged.reset_after = st.duration_until_reset;
    logged.retry_after = over ? st.duration_until_reset : Micros{0};
    options_.decision_log->record(
        {.source = "grpc",
         .path = call.request.domain,
         .key = call.keys_[i].empty() ? std::string_view(m.storage_key) : call.keys_[i],
         .algorithm = limit->policy ? limit->policy->algorithm() : Algorithm::kFixedWindow,
         .decision = &logged,
         .degraded = degraded,
         .client = {}});
  }

  // Statistics as envoyproxy/ratelimit counts them (checkOverLimitThreshold and friends).
  if (stats) {
    stats->total_hits.fetch_add(hits, std::memory_order_relaxed);
    if (over) {
      if (from_cache) {
        stats->over_limit.fetch_add(hits, std::memory_order_relaxed);
        stats->over_limit_with_local_cache.fetch_add(hits, std::memory_order_relaxed);
      } else if (before >= per_unit) {
        stats->over_limit.fetch_add(hits, std::memory_order_relaxed);
      } else {
        stats->over_limit.fetch_add(minus(after, per_unit), std::memory_order_relaxed);
        stats->near_limit.fetch_add(minus(per_unit, std::max(near_threshold, before)),
                                    std::memory_order_relaxed);
      }
      if (limit->shadow_mode) {
        stats->shadow_mode.fetch_add(from_cache || before >= per_unit ? hits : after - per_unit,
                                     std::memory_order_relaxed);
      }
    } else {
      if (after > near_threshold) {
        stats->near_limit.fetch_add(before >= near_threshold ? hits : minus(after, near_threshold),
                                    std::memory_order_relaxed);
      }
      stats->within_limit.fetch_add(hits, std::memory_order_relaxed);
    }
  }
  if (over && limit->shadow_mode) st.code = Code::kOk;
  return st;
}

void Service::finish(Call& call) {
  const Request& req = call.request;
  Response& response = call.response;
  const std::size_t n = req.descriptors.size();
  std::size_t failed_rate_limit = 0;
  std::size_t failed_quota = 0;
  std::size_t total_quota = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Match& m = call.matches_[i];
    const RateLimit* limit = m.replaced ? nullptr : m.limit();
    DescriptorStatus& st = response.statuses[i];
    if (!limit) continue;  // OK, no current_limit, remaining 0
    if (limit->unlimited) {
      st.code = Code::kOk;
      st.limit_remaining = kMaxUint32;
      continue;
    }
    st = status_for(call, i, &stats_for(m.stats_key));
    const bool quota = st.quota_mode;
    if (quota) ++total_quota;
    // In quota mode a descriptor's own answer stays OVER_LIMIT; the overall code counts it only
    // when every quota descriptor is over.
    const bool over = st.code == Code::kOverLimit;
    if (over && quota) {
      ++failed_quota;
    } else if (over) {
      ++failed_rate_limit;
    }
  }
  response.overall_code = failed_rate_limit > 0 || (total_quota > 0 && total_quota == failed_quota)
                              ? Code::kOverLimit
                              : Code::kOk;
  if (options_.response_headers || options_.draft_headers) add_headers(response);
  if (response.overall_code == Code::kOverLimit && options_.global_shadow_mode) {
    response.overall_code = Code::kOk;
    global_shadow_mode_.fetch_add(1, std::memory_order_relaxed);
  }
  if (options_.response_dynamic_metadata) response.dynamic_metadata = dynamic_metadata(call, true);
  if (response.overall_code == Code::kOverLimit) {
    calls_over_limit_.fetch_add(1, std::memory_order_relaxed);
  }
  call.done();
}

namespace {

// merge_metadata(): `from`'s members into `into`; a name `into` already has keeps its value,
// except that two objects merge member by member (envoyproxy/ratelimit's mergeMetadata).
void merge_metadata(boost::json::object& into, const boost::json::object& from) {
  for (const auto& [name, value] : from) {
    auto it = into.find(name);
    if (it == into.end()) {
      into.emplace(name, value);
    } else if (it->value().is_object() && value.is_object()) {
      merge_metadata(it->value().as_object(), value.as_object());
    }
  }
}

// override_text(): a RateLimitDescriptor.limit as protobuf's text format prints it (what
// envoyproxy/ratelimit puts in the metadata): fields at their zero value are left out.
std::string override_text(const LimitOverride& limit) {
  static constexpr std::array<std::string_view, 7> kUnits = {"UNKNOWN", "SECOND", "MINUTE", "HOUR",
                                                             "DAY",     "MONTH",  "YEAR"};
  std::string out;
  if (limit.requests_per_unit != 0)
    out = fmt::format("requests_per_unit:{}", limit.requests_per_unit);
  const auto unit = static_cast<std::size_t>(limit.unit);
  if (unit != 0) {
    if (!out.empty()) out += ' ';
    out += "unit:";
    out += unit < kUnits.size() ? std::string(kUnits[unit]) : std::to_string(unit);
  }
  return out;
}

}  // namespace

std::string Service::dynamic_metadata(const Call& call, bool matched) const {
  // envoyproxy/ratelimit's ratelimitToMetadata(): the domain, each descriptor's entries as
  // "key=value" (with its limit override and hits_addend when given), the request's hits_addend
  // when not 0, and under "metadata" the `metadata` of every descriptor that was not over its
  // limit, merged in request order (the first value of a name wins).
  const Request& req = call.request;
  boost::json::object out;
  out["domain"] = req.domain;
  boost::json::array descriptors;
  descriptors.reserve(req.descriptors.size());
  for (const Descriptor& d : req.descriptors) {
    boost::json::object o;
    boost::json::array entries;
    entries.reserve(d.entries.size());
    for (const Entry& e : d.entries) entries.emplace_back(fmt::format("{}={}", e.key, e.value));
    o["entries"] = std::move(entries);
    if (d.limit) o["limit"] = override_text(*d.limit);
    if (d.hits_addend) o["hitsAddend"] = *d.hits_addend;
    descriptors.emplace_back(std::move(o));
  }
  out["descriptors"] = std::move(descriptors);
  if (req.hits_addend != 0) out["hitsAddend"] = req.hits_addend;

  boost::json::object passed;
  for (std::size_t i = 0; matched && i < call.matches_.size(); ++i) {
    const Match& m = call.matches_[i];
    // A request's own limit carries no metadata; unlimited and replaced limits do not pass.
    const RateLimit* limit = m.replaced ? nullptr : m.limit();
    if (limit == nullptr || limit->unlimited || m.override_limit || m.node == nullptr) continue;
    if (call.response.statuses[i].code == Code::kOverLimit) continue;
    if (m.node->metadata_json.empty()) continue;
    boost::system::error_code ec;
    const boost::json::value metadata = boost::json::parse(m.node->metadata_json, ec);
    if (!ec && metadata.is_object()) merge_metadata(passed, metadata.as_object());
  }
  if (!passed.empty()) out["metadata"] = std::move(passed);
  return boost::json::serialize(out);
}

void Service::add_headers(Response& response) const {
  // The descriptor closest to its limit: an over-limit one (not in quota mode) wins, else the
  // smallest remaining among those with a limit.
  const DescriptorStatus* closest = nullptr;
  bool closest_over = false;
  for (const DescriptorStatus& st : response.statuses) {
    if (!st.current_limit) continue;
    if (st.code == Code::kOverLimit && !st.quota_mode) {
      closest = &st;  // as envoyproxy/ratelimit: the last over-limit descriptor
      closest_over = true;
    } else if (!closest_over && (!closest || st.limit_remaining < closest->limit_remaining)) {
      closest = &st;
    }
  }
  if (!closest) return;
  const std::int64_t reset_s = ceil_seconds(closest->duration_until_reset);
  if (options_.response_headers) {
    response.headers.push_back(
        {options_.limit_header, std::to_string(closest->current_limit->requests_per_unit)});
    response.headers.push_back(
        {options_.remaining_header, std::to_string(closest->limit_remaining)});
    response.headers.push_back({options_.reset_header, std::to_string(reset_s)});
  }
  if (options_.draft_headers) {
    const CurrentLimit& limit = *closest->current_limit;
    const std::string name = limit.name.empty() ? "default" : limit.name;
    std::string quoted;
    core::append_json_string(quoted, name);  // an sf-string: quotes and backslashes escaped alike
    const auto window = std::chrono::seconds(unit_duration(limit.unit)).count();
    response.headers.push_back(
        {"RateLimit-Policy",
         window > 0 ? fmt::format("{};q={};w={}", quoted, limit.requests_per_unit, window)
                    : fmt::format("{};q={}", quoted, limit.requests_per_unit)});
    response.headers.push_back(
        {"RateLimit", fmt::format("{};r={};t={}", quoted, closest->limit_remaining, reset_s)});
  }
}

void Service::append_metrics(std::string& out) const {
  auto out_it = std::back_inserter(out);
  fmt::format_to(out_it,
                 "# HELP floodgate_rls_calls_total ShouldRateLimit calls answered.\n"
                 "# TYPE floodgate_rls_calls_total counter\n"
                 "floodgate_rls_calls_total {}\n"
                 "# HELP floodgate_rls_calls_over_limit_total Calls answered OVER_LIMIT.\n"
                 "# TYPE floodgate_rls_calls_over_limit_total counter\n"
                 "floodgate_rls_calls_over_limit_total {}\n"
                 "# HELP floodgate_rls_global_shadow_mode_total Calls over limit answered OK by "
                 "SHADOW_MODE.\n"
                 "# TYPE floodgate_rls_global_shadow_mode_total counter\n"
                 "floodgate_rls_global_shadow_mode_total {}\n"
                 "# HELP floodgate_rls_degraded_total Descriptors answered by the failure mode.\n"
                 "# TYPE floodgate_rls_degraded_total counter\n"
                 "floodgate_rls_degraded_total {}\n"
                 "# HELP floodgate_rls_over_limit_cache_entries Counters in the over-limit cache.\n"
                 "# TYPE floodgate_rls_over_limit_cache_entries gauge\n"
                 "floodgate_rls_over_limit_cache_entries {}\n",
                 calls_.load(std::memory_order_relaxed),
                 calls_over_limit_.load(std::memory_order_relaxed),
                 global_shadow_mode_.load(std::memory_order_relaxed),
                 degraded_.load(std::memory_order_relaxed), over_limit_cache_.size());

  struct Series {
    std::string_view name;
    std::string_view help;
    std::atomic<std::uint64_t> Stats::*field;
  };
  static constexpr Series kSeries[] = {
      {"floodgate_rls_total_hits_total", "Hits counted per descriptor limit.", &Stats::total_hits},
      {"floodgate_rls_over_limit_total", "Hits over the limit.", &Stats::over_limit},
      {"floodgate_rls_near_limit_total", "Hits above NEAR_LIMIT_RATIO of the limit.",
       &Stats::near_limit},
      {"floodgate_rls_within_limit_total", "Hits within the limit.", &Stats::within_limit},
      {"floodgate_rls_shadow_mode_total", "Hits over a shadow_mode limit, answered OK.",
       &Stats::shadow_mode},
      {"floodgate_rls_over_limit_with_local_cache_total",
       "Hits answered over limit by the over-limit cache.", &Stats::over_limit_with_local_cache},
  };
  std::shared_lock lock(stats_mu_);
  std::vector<std::pair<std::string_view, const Stats*>> sorted;
  sorted.reserve(stats_.size());
  for (const auto& [key, stats] : stats_) sorted.emplace_back(key, stats.get());
  std::sort(sorted.begin(), sorted.end());
  for (const Series& s : kSeries) {
    fmt::format_to(out_it, "# HELP {} {}\n# TYPE {} counter\n", s.name, s.help, s.name);
    for (const auto& [key, stats] : sorted) {
      // The statistic name is "domain.key_value.key...": the domain is its first part.
      const std::size_t dot = key.find('.');
      out.append(s.name);
      out += "{domain=\"";
      observe::append_label_value(out, key.substr(0, dot));
      out += "\",descriptor=\"";
      observe::append_label_value(out, key);
      fmt::format_to(out_it, "\"}} {}\n", (stats->*s.field).load(std::memory_order_relaxed));
    }
  }
}

}  // namespace floodgate::rls
