// File: rls/service.h
//
// Service: envoyproxy/ratelimit's ShouldRateLimit on floodgate's stores, free of gRPC and
// protobuf, so the gRPC front (server/grpc) and POST /json (server/http) are thin translations and
// every semantic is testable without a socket.
//
// One call: the request's descriptors are matched against the config in force (rls/matcher.h),
// the limits that apply go to the store as one batch (one round trip to Redis), and the answer is
// assembled as envoyproxy/ratelimit assembles it (src/service/ratelimit.go, src/limiter/
// base_limiter.go): a status per descriptor with current_limit, limit_remaining and
// duration_until_reset; `unlimited` answers limit_remaining 4294967295 without touching the store;
// shadow_mode answers OK and counts what would have been limited; quota_mode descriptors make the
// overall code OVER_LIMIT only when all of them are over; optional RateLimit-* response headers
// describe the descriptor closest to its limit.
//
// Example:
//   struct Reply final : rls::Call {
//     void done() override { /* encode response or error */ }
//   } call;
//   call.request.domain = "edge";
//   call.request.descriptors.push_back({{{"remote_address", "10.0.0.1"}}, {}, {}});
//   service.should_rate_limit(call);  // done() may run before this returns
//
// Thread safety: should_rate_limit() may run on any number of threads at once; set_config() from
// any thread (calls in flight keep the config they started with).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "admin/access_lists.h"
#include "admin/stats.h"
#include "floodgate/clock.h"
#include "floodgate/limiter.h"
#include "observe/decision_log.h"
#include "rls/config.h"
#include "rls/matcher.h"

namespace floodgate::rls {

enum class Code : std::uint8_t { kUnknown = 0, kOk = 1, kOverLimit = 2 };

struct Request {
  std::string_view domain;
  std::vector<Descriptor> descriptors;
  // Hits for every descriptor without its own; 0 means 1 (RateLimitRequest.hits_addend).
  std::uint32_t hits_addend = 0;
};

// RateLimitResponse.RateLimit: the limit a status reports.
struct CurrentLimit {
  std::uint32_t requests_per_unit = 0;
  Unit unit = Unit::kUnknown;
  std::string name;
};

struct DescriptorStatus {
  Code code = Code::kOk;
  // Set when a limit applied (not for unlimited, replaced or unmatched descriptors).
  std::optional<CurrentLimit> current_limit;
  std::uint32_t limit_remaining = 0;
  Micros duration_until_reset{0};  // meaningful with current_limit
  bool quota_mode = false;         // the limit is in quota mode (its own or QUOTA_MODE)
};

struct Header {
  std::string_view name;  // points into the ServiceOptions
  std::string value;
};

struct Response {
  Code overall_code = Code::kOk;
  std::vector<DescriptorStatus> statuses;
  std::vector<Header> headers;
  // RESPONSE_DYNAMIC_METADATA: RateLimitResponse.dynamic_metadata as a JSON object (the proto3
  // JSON form of a google.protobuf.Struct); empty when the option is off.
  std::string dynamic_metadata;
};

// What the front turns into a gRPC status (or an HTTP 400): the request cannot be answered.
struct CallError {
  enum class Kind : std::uint8_t { kInvalidArgument, kUnavailable } kind = Kind::kInvalidArgument;
  std::string message;  // names the field, e.g. "descriptors[1].entries[0].key: must not be empty"
};

class Service;

// Call: one ShouldRateLimit on its way through the Service. The front fills `request` (its string
// views must stay valid until done()), calls Service::should_rate_limit(), and reads `response`
// or `error` in done(), which runs exactly once, inline or on a store thread.
class Call : private Completion {
 public:
  Request request;
  Response response;
  std::optional<CallError> error;

  virtual void done() = 0;

 protected:
  Call() = default;
  virtual ~Call() = default;

 private:
  friend class Service;
  void complete() override;

  Service* service_ = nullptr;
  std::shared_ptr<const Config> config_;  // keeps the matches' limits alive
  std::vector<Match> matches_;
  std::vector<std::uint64_t> hits_;
  std::vector<int> op_of_;  // descriptor -> index in ops_, or -1
  std::vector<std::string> keys_;
  std::vector<CheckOp> ops_;
  std::vector<Outcome> outcomes_;
};

struct ServiceOptions {
  // LIMIT_RESPONSE_HEADERS_ENABLED and the header names (envoyproxy/ratelimit's settings).
  bool response_headers = false;
  std::string limit_header = "RateLimit-Limit";
  std::string remaining_header = "RateLimit-Remaining";
  std::string reset_header = "RateLimit-Reset";
  // RLS_DRAFT_HEADERS: also RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers).
  bool draft_headers = false;
  bool global_shadow_mode = false;  // SHADOW_MODE
  bool global_quota_mode = false;   // QUOTA_MODE
  double near_limit_ratio = 0.8;    // NEAR_LIMIT_RATIO
  // RESPONSE_DYNAMIC_METADATA: each answer carries the request (domain, descriptors, hits) and
  // the `metadata` of the limits that passed, for Envoy to hand on as dynamic metadata.
  bool response_dynamic_metadata = false;
  // The over-limit cache: counters known to be over their limit until their window ends are
  // answered without asking the store. 0 turns it off.
  std::size_t over_limit_cache_entries = 65536;
  FailureMode failure_mode = FailureMode::kFailOpen;
  // The time for the over-limit cache and for answers the store did not time; null: the system
  // clock. Borrowed. Tests give the ManualClock their memory store runs on.
  const Clock* clock = nullptr;
  // Requests with more descriptors, or descriptors with more entries, are refused.
  std::size_t max_descriptors = 64;
  std::size_t max_entries = 32;
  // Distinct statistic names tracked; beyond it, counts go to one "_other_" series.
  std::size_t max_stat_series = 10000;
  // The allowlist and blocklist, asked with each request's `remote_address` entries (a
  // blocklisted address: OVER_LIMIT, an allowlisted one: OK, nothing consumed). Null: none.
  const admin::AccessLists* lists = nullptr;
  // The admin side's recent figures: each descriptor decided counts there (per second, top denied
  // keys). Null: not kept. Borrowed.
  admin::Stats* admin_stats = nullptr;
  // One log line per descriptor decided (LOG_DECISIONS); null: none. Borrowed.
  observe::DecisionLog* decision_log = nullptr;
};

// OverLimitCache: counter names known to be over their limit until a time, bounded in entries.
// Exposed for tests.
class OverLimitCache {
 public:
  using TimePoint = Micros;  // since the Unix epoch, as Clock::now()
  explicit OverLimitCache(std::size_t max_entries);

  // over_until(): when `key` stops being over `limit`, or nullopt when it is not known to be.
  std::optional<TimePoint> over_until(std::string_view key, const Policy& limit, TimePoint now);
  void insert(std::string_view key, const Policy& limit, TimePoint until, TimePoint now);
  std::size_t size() const;

 private:
  struct Entry {
    TimePoint until;
    std::uint64_t limit = 0;
    Micros window{0};
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry, DescriptorNode::Hash, std::equal_to<>> entries;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::string_view key);
  std::size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

class Service {
 public:
  // `limiter` is borrowed and must outlive the service.
  Service(Limiter& limiter, ServiceOptions options,
          std::shared_ptr<const Config> config = std::make_shared<Config>());

  void should_rate_limit(Call& call);

  void set_config(std::shared_ptr<const Config> config);
  std::shared_ptr<const Config> config() const;

  // append_metrics(): floodgate_rls_* series in the Prometheus text format.
  void append_metrics(std::string& out) const;

  const ServiceOptions& options() const { return options_; }

 private:
  struct Stats {
    std::atomic<std::uint64_t> total_hits{0};
    std::atomic<std::uint64_t> over_limit{0};
    std::atomic<std::uint64_t> near_limit{0};
    std::atomic<std::uint64_t> within_limit{0};
    std::atomic<std::uint64_t> shadow_mode{0};
    std::atomic<std::uint64_t> over_limit_with_local_cache{0};
  };
  friend class Call;

  void finish(Call& call);
  DescriptorStatus status_for(Call& call, std::size_t i, Stats* stats);
  void add_headers(Response& response) const;
  // dynamic_metadata(): Response::dynamic_metadata for `call`, its statuses decided; `matched`:
  // whether call.matches_ holds the request's matches (not on the allowlist/blocklist path).
  std::string dynamic_metadata(const Call& call, bool matched) const;
  Stats& stats_for(std::string_view stats_key);

  Micros now() const { return options_.clock ? options_.clock->now() : system_clock_.now(); }

  Limiter& limiter_;
  ServiceOptions options_;
  SystemClock system_clock_;
  mutable std::mutex config_mu_;
  std::shared_ptr<const Config> config_;  // guarded by config_mu_
  OverLimitCache over_limit_cache_;

  mutable std::shared_mutex stats_mu_;
  std::unordered_map<std::string, std::unique_ptr<Stats>, DescriptorNode::Hash, std::equal_to<>>
      stats_;  // guarded by stats_mu_
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> calls_over_limit_{0};
  std::atomic<std::uint64_t> global_shadow_mode_{0};
  std::atomic<std::uint64_t> degraded_{0};
};

}  // namespace floodgate::rls
