// File: server/http/api.h
//
// Api: the HTTP endpoints as a function from a request to a response, free of any socket or
// HTTP library, so every route and error is unit-testable and the server (server.h) stays a thin
// transport. Routes:
//
//   POST /v1/check            {"key", "algorithm", <parameters>, "cost"}: 200 allowed, 429 denied
//   POST /check               the seeds' shape: {"key", "algorithm", "capacity", "refill_rate"}
//   POST /api/v1/ratelimit    the seeds' shape; the key defaults to the client's address
//   POST /v1/inspect          the decision a check would get, consuming nothing (always 200)
//   GET  /v1/auth             for nginx auth_request: 204 allowed, 403 denied
//   POST /json                the Envoy rate limit service in JSON (when configured)
//   GET  /health              liveness;   GET /ready: the store can answer;   GET /metrics
//
// Every decision carries RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers-10),
// X-RateLimit-Limit/-Remaining/-Reset and, on 429, Retry-After. Every error is a 4xx with
// {"error": {"code", "message", "field"}}.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/access_lists.h"
#include "admin/overrides.h"
#include "admin/stats.h"
#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "observe/decision_log.h"
#include "observe/metrics.h"
#include "rules/rule_set.h"
#include "server/http/check_request.h"

namespace floodgate::http {

// HeaderLookup: read access to the request's headers, whatever holds them.
class HeaderLookup {
 public:
  // get(): the value of the first header named `name` (case-insensitive), or "" if absent.
  virtual std::string_view get(std::string_view name) const = 0;

 protected:
  ~HeaderLookup() = default;
};

struct Request {
  std::string_view method;
  std::string_view target;  // path and query
  std::string_view body;
  std::string_view peer_address;  // the TCP peer, without port
  const HeaderLookup& headers;
};

struct Response {
  int status = 200;
  std::string_view content_type = "application/json";  // a static string, or empty
  std::string body;
  std::vector<std::pair<std::string_view, std::string>> headers;  // names are static strings

  // A stream (Server-Sent Events) when set: the head and `body` go out without a length, then
  // every `stream_every` the transport calls next() on its own thread and sends what it returns,
  // until it returns nullopt, the client goes away or the server stops; then the connection
  // closes. next() must not block.
  std::function<std::optional<std::string>()> next;
  std::chrono::milliseconds stream_every{1000};
};

// Route: an endpoint another front serves through this server (POST /json: the Envoy rate limit
// service in JSON). serve() answers through `reply` exactly once, inline or later from any thread.
class Route {
 public:
  virtual void serve(const Request& request, std::function<void(Response)> reply) = 0;

 protected:
  ~Route() = default;
};

struct ApiOptions {
  PolicyDefaults defaults;
  // What a decision is when the store cannot make it, for requests whose rule names none.
  FailureMode failure_mode = FailureMode::kFailOpen;
  // Named rules ({"rule": ...} and /v1/auth's key and policy); null: none configured. Borrowed.
  const rules::RuleStore* rules = nullptr;
  // /v1/auth: the header holding an API key; when present it is the key, else the client address.
  std::string api_key_header = "X-API-Key";
  // POST /json; null: the endpoint answers 404. Borrowed.
  Route* json_route = nullptr;
  // The allowlist and blocklist, asked before every check; null: none. Borrowed.
  const admin::AccessLists* lists = nullptr;
  // Runtime overrides of a key's policy (POST /admin/limits), asked before every check; null:
  // none. Borrowed.
  const admin::Overrides* overrides = nullptr;
  // The admin side's recent figures (decisions per second, latency, top denied keys); null: not
  // kept. Borrowed.
  admin::Stats* stats = nullptr;
  // Appends more series to GET /metrics (the Envoy rate limit service's).
  std::function<void(std::string&)> extra_metrics = nullptr;
  // GET /healthcheck (envoyproxy/ratelimit's probe path) also fails while the store is not
  // reachable (REDIS_HEALTH_CHECK_ACTIVE_CONNECTION); otherwise it answers as long as the process
  // serves, as envoyproxy/ratelimit's does.
  bool healthcheck_needs_store = false;
  // One log line per decision (LOG_DECISIONS); null: none. Borrowed.
  observe::DecisionLog* decision_log = nullptr;
};

class Api;
class Exchange;

// Handler: what an HttpServer serves (the API, the admin API): a request in, an answer through
// the Exchange, exactly once, inline or later from any thread.
class Handler {
 public:
  virtual void handle(const Request& request, Exchange& exchange) = 0;
  // record_status(): counts a response the transport produced itself (413, 431, 400, 500).
  virtual void record_status(int status) = 0;

 protected:
  ~Handler() = default;
};

// Exchange: one request on its way through the Api. The transport owns it (one per connection,
// reused from request to request) and learns the answer through respond(), which runs exactly once
// per Api::handle(): inline, before handle() returns (routes that need no store, and the memory
// store), or later on a store thread (the Redis store). The Api keeps the check's key, policy and
// outcome here while the store works.
class Exchange : private Completion {
 public:
  virtual void respond(Response response) = 0;

 protected:
  Exchange() = default;
  virtual ~Exchange() = default;

 private:
  friend class Api;
  void complete() override;

  Api* api_ = nullptr;
  const Request* request_ = nullptr;  // valid until respond() (see Api::handle())
  std::string key_;
  std::optional<Policy> policy_;
  CheckOp op_;
  Outcome outcome_;
  FailureMode mode_ = FailureMode::kFailOpen;
  int rule_slot_ = -1;
  int allowed_status_ = 200;
  int denied_status_ = 429;
  bool with_body_ = true;
  std::chrono::steady_clock::time_point started_;
};

class Api final : public Handler {
 public:
  // `limiter`, `store` and `metrics` are borrowed and must outlive the Api. Thread-safe.
  Api(Limiter& limiter, MemoryStore& store, observe::Metrics& metrics, ApiOptions options);

  // handle(): answers one request through `exchange` (see Exchange) and counts its status in the
  // metrics. `request` (and what it points to) must stay valid until respond() has run.
  void handle(const Request& request, Exchange& exchange) override;

  // handle(): the same, waiting for the answer (tests, tools). Do not call it on a store thread.
  Response handle(const Request& request);

  // record_status(): counts a response the transport produced itself (see error_response()).
  void record_status(int status) override { metrics_.record_http(status); }

  // error_response(): what the transport sends for errors found before a request is whole
  // (413 body too large, 431 headers too large, 400 malformed HTTP).
  static Response error_response(const ApiError& error);

 private:
  enum class Shape { kCheck, kSeedCheck, kSeedRatelimit, kInspect };

  friend class Exchange;

  // route(), check(), auth(): an immediate answer, or nullopt once a check went to the store (the
  // answer then comes through finish()).
  std::optional<Response> route(const Request& request, Exchange& x);
  std::optional<Response> check(const Request& request, Shape shape, Exchange& x);
  std::optional<Response> auth(const Request& request, Exchange& x);
  void start_check(Exchange& x);
  void finish(Exchange& x);
  Response ready() const;
  Response listed_response(admin::Listed listed, std::string_view key, int allowed_status,
                           bool with_body);
  Response decision_response(const Decision& d, const Policy& policy, int allowed_status,
                             int denied_status, bool with_body, bool degraded);

  Limiter& limiter_;
  MemoryStore& store_;
  observe::Metrics& metrics_;
  ApiOptions options_;
  Policy default_policy_;  // the defaults, compiled once: most checks name no policy
};

}  // namespace floodgate::http
