#include "server/http/api.h"

#include <chrono>
#include <condition_variable>
#include <mutex>

#include <fmt/compile.h>
#include <fmt/format.h>

#include "core/json_text.h"
#include "server/http/target.h"

namespace floodgate::http {
namespace {

using core::append_json_string;

// ceil(us / unit), for headers and *_ms fields: a client that waits that long is never early.
std::int64_t ceil_to(Micros d, std::int64_t unit_us) { return (d.count() + unit_us - 1) / unit_us; }

// The client's address as nginx hands it over: X-Real-IP, else the first X-Forwarded-For hop,
// else the TCP peer.
std::string_view client_address(const Request& r) {
  if (auto real_ip = r.headers.get("X-Real-IP"); !real_ip.empty()) return real_ip;
  if (auto fwd = r.headers.get("X-Forwarded-For"); !fwd.empty()) {
    fwd = fwd.substr(0, fwd.find(','));
    while (!fwd.empty() && fwd.front() == ' ') fwd.remove_prefix(1);
    while (!fwd.empty() && fwd.back() == ' ') fwd.remove_suffix(1);
    if (!fwd.empty()) return fwd;
  }
  return r.peer_address;
}

// The policy of a request that names none: the configured defaults (validated at startup).
Policy default_policy(const PolicyDefaults& defaults) {
  ApiError ignored;
  return policy_for(CheckRequest{}, defaults, ignored)
      .value_or(Policy::token_bucket(100, 1).value());
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

Api::Api(Limiter& limiter, MemoryStore& store, observe::Metrics& metrics, ApiOptions options)
    : limiter_(limiter),
      store_(store),
      metrics_(metrics),
      options_(std::move(options)),
      default_policy_(default_policy(options_.defaults)) {}

Response Api::error_response(const ApiError& e) {
  std::string body = "{\"error\":{\"code\":";
  append_json_string(body, e.code);
  body += ",\"message\":";
  append_json_string(body, e.field.empty() ? e.message : e.field + " " + e.message);
  body += ",\"field\":";
  if (e.field.empty()) {
    body += "null";
  } else {
    append_json_string(body, e.field);
  }
  body += "}}";
  return json_response(e.status, std::move(body));
}

void Exchange::complete() { api_->finish(*this); }

void Api::handle(const Request& request, Exchange& x) {
  x.api_ = this;
  x.request_ = &request;
  std::optional<Response> response = route(request, x);
  if (!response) return;  // a check is with the store; finish() answers
  metrics_.record_http(response->status);
  x.respond(std::move(*response));
}

Response Api::handle(const Request& request) {
  // Waits on a mutex held while notifying, so respond() is done with the waiter before it can
  // return and destroy it.
  struct Waiter final : Exchange {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Response> response;
    void respond(Response r) override {
      std::lock_guard lock(mu);
      response = std::move(r);
      cv.notify_one();
    }
  } waiter;
  handle(request, waiter);
  std::unique_lock lock(waiter.mu);
  waiter.cv.wait(lock, [&] { return waiter.response.has_value(); });
  return std::move(*waiter.response);
}

void Api::start_check(Exchange& x) {
  x.op_ = CheckOp{x.key_, &*x.policy_, x.op_.cost};
  x.outcome_ = Outcome{};
  x.started_ = std::chrono::steady_clock::now();
  // Nothing may touch `x` after this call: the store may complete (and the transport reuse `x`)
  // before it returns.
  limiter_.check_async({&x.op_, 1}, {&x.outcome_, 1}, x);
}

void Api::finish(Exchange& x) {
  Response r;
  try {
    limiter_.settle(x.op_, x.outcome_, x.mode_);
    const auto took =
        std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - x.started_);
    const Decision& d = x.outcome_.decision;
    metrics_.record_decision(x.policy_->algorithm(), x.rule_slot_, d.allowed, took,
                             x.outcome_.degraded);
    if (options_.stats != nullptr) options_.stats->record(x.key_, d.allowed, took);
    if (options_.decision_log != nullptr && options_.decision_log->wants(d.allowed)) {
      options_.decision_log->record({.source = "http",
                                     .path = path_of(x.request_->target),
                                     .key = x.key_,
                                     .algorithm = x.policy_->algorithm(),
                                     .decision = &d,
                                     .degraded = x.outcome_.degraded,
                                     .client = client_address(*x.request_)});
    }
    r = decision_response(d, *x.policy_, x.allowed_status_, x.denied_status_, x.with_body_,
                          x.outcome_.degraded);
  } catch (const std::exception& e) {
    r = error_response({500, "internal", e.what(), ""});
  }
  metrics_.record_http(r.status);
  x.respond(std::move(r));
}

Response Api::ready() const {
  const StoreHealth h = limiter_.store().health();
  std::string body = fmt::format(R"({{"status":"{}","store":"{}","state":)",
                                 h.ready ? "ready" : "not_ready", limiter_.store().name());
  append_json_string(body, h.state);
  if (!h.error.empty()) {
    body += ",\"error\":";
    append_json_string(body, h.error);
  }
  body += '}';
  return json_response(h.ready ? 200 : 503, std::move(body));
}

std::optional<Response> Api::route(const Request& request, Exchange& x) {
  const std::string_view path = path_of(request.target);
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";

  struct Endpoint {
    std::string_view path;
    bool wants_post;
  };
  static constexpr Endpoint kRoutes[] = {
      {"/v1/check", true},     {"/check", true},    {"/api/v1/ratelimit", true},
      {"/v1/inspect", true},   {"/v1/auth", false}, {"/health", false},
      {"/ready", false},       {"/metrics", false}, {"/json", true},
      {"/healthcheck", false},
  };
  for (const Endpoint& route : kRoutes) {
    if (route.path != path) continue;
    if (route.wants_post ? !post : !get) {
      Response r =
          error_response({405, "method_not_allowed",
                          fmt::format("{} takes {}", path, route.wants_post ? "POST" : "GET"), ""});
      r.headers.emplace_back("Allow", route.wants_post ? "POST" : "GET, HEAD");
      return r;
    }
    if (path == "/v1/check") return check(request, Shape::kCheck, x);
    if (path == "/check") return check(request, Shape::kSeedCheck, x);
    if (path == "/api/v1/ratelimit") return check(request, Shape::kSeedRatelimit, x);
    if (path == "/v1/inspect") return check(request, Shape::kInspect, x);
    if (path == "/v1/auth") return auth(request, x);
    if (path == "/health") return json_response(200, R"({"status":"ok"})");
    if (path == "/ready") return ready();
    if (path == "/healthcheck") {
      // envoyproxy/ratelimit's probe: "OK" in plain text (it fails with 500; 503 says why better).
      Response r;
      r.content_type = "text/plain; charset=utf-8";
      if (options_.healthcheck_needs_store && !limiter_.store().health().ready) {
        r.status = 503;
        r.body = "store not reachable\n";
      } else {
        r.body = "OK";
      }
      return r;
    }
    if (path == "/json") {
      if (!options_.json_route) break;
      options_.json_route->serve(request, [this, &x](Response r) {
        metrics_.record_http(r.status);
        x.respond(std::move(r));
      });
      return std::nullopt;
    }
    Response r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.render(store_.stats().keys, limiter_.store().name());
    limiter_.store().append_metrics(r.body);
    if (options_.extra_metrics) options_.extra_metrics(r.body);
    return r;
  }
  return error_response({404, "not_found", fmt::format("no such endpoint: {}", path), ""});
}

std::optional<Response> Api::check(const Request& request, Shape shape, Exchange& x) {
  ApiError error;
  auto parsed = parse_check_request(request.body, error);
  if (!parsed) return error_response(error);
  CheckRequest& req = *parsed;

  if (!req.key) {
    if (shape != Shape::kSeedRatelimit) {
      return error_response({400, "missing_field", "is required", "key"});
    }
    req.key = std::string(client_address(request));
  }
  if (req.key->empty())
    return error_response({400, "invalid_parameter", "must not be empty", "key"});
  if (shape == Shape::kInspect && req.cost) {
    return error_response(
        {400, "invalid_parameter", "is not accepted: inspect never consumes", "cost"});
  }
  std::optional<Policy>& policy = x.policy_;
  policy.reset();
  std::string rule_key;  // a rule's keys live apart from inline policies' and other rules'
  x.rule_slot_ = observe::Metrics::kNoRule;
  x.mode_ = options_.failure_mode;
  if (req.rule) {
    if (!req.policy.empty()) {
      return error_response({400, "invalid_parameter",
                             "cannot be combined with an algorithm or its parameters", "rule"});
    }
    const rules::Rule* rule = options_.rules ? options_.rules->current().find(*req.rule) : nullptr;
    if (!rule) return error_response({400, "unknown_rule", "names no configured rule", "rule"});
    const auto resolved =
        rule->resolve(*req.key, [&](std::string_view name) { return request.headers.get(name); });
    policy = *resolved.policy;
    rule_key = fmt::format("rule/{}/{}/{}", rule->name, resolved.tier, *req.key);
    x.rule_slot_ = rule->metrics_slot;
    x.mode_ = rule->failure_mode.value_or(options_.failure_mode);
  } else if (req.policy.empty()) {
    policy = default_policy_;
  } else {
    policy = policy_for(req, options_.defaults, error);
    if (!policy) return error_response(error);
  }
  const auto cost =
      shape == Shape::kInspect ? std::optional<std::uint64_t>{0} : cost_of(req, error);
  if (!cost) return error_response(error);

  // The allow and block lists, before any store: a listed client consumes nothing.
  std::optional<admin::IpAddress> ip;
  if (req.ip) {
    ip = admin::parse_ip(*req.ip);
    if (!ip)
      return error_response({400, "invalid_parameter", "is not an IPv4 or IPv6 address", "ip"});
  }
  if (options_.lists) {
    const admin::Listed listed = options_.lists->check(*req.key, ip ? &*ip : nullptr);
    if (listed != admin::Listed::kNone) return listed_response(listed, *req.key, 200, true);
  }
  // A runtime override (POST /admin/limits) replaces whatever policy the request named.
  if (options_.overrides != nullptr) {
    if (auto changed = options_.overrides->find(*req.key, req.rule ? *req.rule : "")) {
      policy = *changed;
    }
  }

  x.key_ = rule_key.empty() ? std::move(*req.key) : std::move(rule_key);
  x.op_.cost = *cost;
  x.allowed_status_ = 200;
  x.denied_status_ = shape == Shape::kInspect ? 200 : 429;
  x.with_body_ = true;
  start_check(x);
  return std::nullopt;
}

std::optional<Response> Api::auth(const Request& request, Exchange& x) {
  const std::string_view api_key = request.headers.get(options_.api_key_header);
  const rules::RuleSet* set = options_.rules ? &options_.rules->current() : nullptr;
  // The rule: named by the proxy's location (/v1/auth?rule=login), else the first of auth.routes
  // matching the original request, else auth.rule.
  const rules::Rule* rule = nullptr;
  if (const auto named = query_param(request.target, "rule")) {
    rule = set ? set->find(*named) : nullptr;
    if (rule == nullptr) {
      return error_response({400, "unknown_rule", "names no configured rule", "rule"});
    }
  } else if (set) {
    rule = set->auth_rule_for(path_of(request.headers.get("X-Original-URI")),
                              request.headers.get("X-Original-Method"));
  }

  std::string key;
  const Policy* policy = &default_policy_;
  if (rule == nullptr) {
    // No rule: the defaults, per API key when one is sent, else per client address.
    key = api_key.empty() ? fmt::format("ip:{}", client_address(request))
                          : fmt::format("api_key:{}", api_key);
  } else {
    // The rule's key parts, joined: e.g. [ip, uri] limits each client per original URI. An API
    // key or header the request does not carry stands in as the client's address ("ip:<addr>"):
    // requests without one must not all share one budget, which one client could spend for all.
    std::string parts;
    auto or_address = [&](std::string_view value) {
      if (value.empty()) {
        parts += "ip:";
        parts += client_address(request);
      } else {
        parts += value;
      }
    };
    static const std::vector<rules::KeyPart> kIpOnly = {{rules::KeyPart::Kind::kIp, {}}};
    for (const rules::KeyPart& part : rule->key.empty() ? kIpOnly : rule->key) {
      if (!parts.empty()) parts += '|';
      switch (part.kind) {
        case rules::KeyPart::Kind::kIp:
          parts += client_address(request);
          break;
        case rules::KeyPart::Kind::kApiKey:
          or_address(api_key);
          break;
        case rules::KeyPart::Kind::kUri:
          parts += path_of(request.headers.get("X-Original-URI"));
          break;
        case rules::KeyPart::Kind::kHeader:
          or_address(request.headers.get(part.header));
          break;
      }
    }
    const auto resolved =
        rule->resolve(parts, [&](std::string_view name) { return request.headers.get(name); });
    policy = resolved.policy;
    key = fmt::format("auth/{}/{}/{}", rule->name, resolved.tier, parts);
  }
  if (key.size() > kMaxKeyBytes + 128) {
    return error_response(
        {400, "key_too_long", fmt::format("must be at most {} bytes", kMaxKeyBytes + 128), "key"});
  }
  if (options_.lists && !options_.lists->empty()) {
    // A key entry matches the API key when one is sent; an ip entry the client's address.
    const auto ip = admin::parse_ip(client_address(request));
    const admin::Listed listed = options_.lists->check(
        api_key.empty() ? std::string_view(key) : api_key, ip ? &*ip : nullptr);
    if (listed != admin::Listed::kNone) {
      return listed_response(listed, api_key.empty() ? std::string_view(key) : api_key, 204, false);
    }
  }
  std::optional<Policy> overridden;
  if (options_.overrides != nullptr) {
    const std::string_view who = api_key.empty() ? client_address(request) : api_key;
    overridden = options_.overrides->find(who, rule ? std::string_view(rule->name) : "");
  }
  x.key_ = std::move(key);
  x.policy_ = overridden ? *overridden : *policy;
  x.op_.cost = 1;
  x.rule_slot_ = rule ? rule->metrics_slot : observe::Metrics::kNoRule;
  x.mode_ = rule ? rule->failure_mode.value_or(options_.failure_mode) : options_.failure_mode;
  x.allowed_status_ = 204;
  x.denied_status_ = 403;
  x.with_body_ = false;
  start_check(x);
  return std::nullopt;
}

Response Api::listed_response(admin::Listed listed, std::string_view key, int allowed_status,
                              bool with_body) {
  Response r;
  const bool allowed = listed == admin::Listed::kAllowlisted;
  r.status = allowed ? allowed_status : 403;
  metrics_.record_listed(allowed);
  if (options_.stats != nullptr) options_.stats->record(key, allowed);
  if (!with_body) {
    r.content_type = {};
    return r;
  }
  r.body = allowed ? R"({"allowed":true,"reason":"allowlisted","degraded":false})"
                   : R"({"allowed":false,"reason":"blocklisted","degraded":false})";
  return r;
}

Response Api::decision_response(const Decision& d, const Policy& policy, int allowed_status,
                                int denied_status, bool with_body, bool degraded) {
  // Every decision is answered, so this is the hot path's formatting: compiled format strings,
  // and room made once (the headers' vector would otherwise grow four times, the body three).
  Response r;
  r.status = d.allowed ? allowed_status : denied_status;
  r.headers.reserve(6);
  const bool resets = d.reset_after != kNever;
  const std::int64_t reset_s = resets ? ceil_to(d.reset_after, 1'000'000) : 0;

  // draft-ietf-httpapi-ratelimit-headers-10: a policy item with its quota and window, and the
  // current state of that policy with what remains and when it resets.
  if (policy.window().count() > 0) {
    r.headers.emplace_back("RateLimit-Policy",
                           fmt::format(FMT_COMPILE("\"default\";q={};w={}"), d.limit,
                                       ceil_to(policy.window(), 1'000'000)));
  } else {
    r.headers.emplace_back("RateLimit-Policy",
                           fmt::format(FMT_COMPILE("\"default\";q={}"), d.limit));
  }
  r.headers.emplace_back(
      "RateLimit", resets ? fmt::format(FMT_COMPILE("\"default\";r={};t={}"), d.remaining, reset_s)
                          : fmt::format(FMT_COMPILE("\"default\";r={}"), d.remaining));
  r.headers.emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
  r.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
  if (resets) {  // the Unix time (seconds) at which the limit is whole again, as GitHub sends it
    r.headers.emplace_back(
        "X-RateLimit-Reset",
        std::to_string(ceil_to(store_.clock().now() + d.reset_after, 1'000'000)));
  }
  if (!d.allowed && d.retry_after != kNever && d.reason != DenyReason::kCostExceedsCapacity) {
    r.headers.emplace_back("Retry-After", std::to_string(ceil_to(d.retry_after, 1'000'000)));
  }
  if (!with_body) {
    r.content_type = {};
    return r;
  }

  std::string& b = r.body;
  b.reserve(192);
  auto out = std::back_inserter(b);
  fmt::format_to(out, FMT_COMPILE(R"({{"allowed":{},"limit":{},"remaining":{},"reset_after_ms":)"),
                 d.allowed, d.limit, d.remaining);
  if (resets) {
    fmt::format_to(out, FMT_COMPILE("{}"), ceil_to(d.reset_after, 1000));
  } else {
    b += "null";
  }
  b += ",\"retry_after_ms\":";
  if (d.retry_after == kNever) {
    b += "null";
  } else {
    fmt::format_to(out, FMT_COMPILE("{}"), ceil_to(d.retry_after, 1000));
  }
  fmt::format_to(out, FMT_COMPILE(R"(,"algorithm":"{}","degraded":{})"),
                 to_string(policy.algorithm()), degraded);
  if (!d.allowed) fmt::format_to(out, FMT_COMPILE(R"(,"reason":"{}")"), to_string(d.reason));
  if (policy.algorithm() == Algorithm::kLeakyBucket && d.allowed) {
    fmt::format_to(out, FMT_COMPILE(R"(,"delay_ms":{})"), ceil_to(d.delay, 1000));
  }
  b += '}';
  return r;
}

}  // namespace floodgate::http
