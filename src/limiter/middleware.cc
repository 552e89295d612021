#include "floodgate/middleware.h"

#include "core/json_text.h"

namespace floodgate {

namespace {

std::int64_t ceil_seconds(Micros d) { return (d.count() + 999'999) / 1'000'000; }

bool path_under(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || prefix.ends_with('/') || path[prefix.size()] == '/';
}

// An sf-string for the RateLimit headers: quotes and backslashes escaped.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

Middleware::Middleware(Limiter& limiter, std::vector<RouteLimit> routes, FailureMode failure_mode,
                       const Clock& clock)
    : limiter_(limiter), routes_(std::move(routes)), failure_mode_(failure_mode), clock_(clock) {}

const RouteLimit* Middleware::route_for(std::string_view method, std::string_view path) const {
  for (const RouteLimit& r : routes_) {
    if (!r.method.empty() && r.method != method) continue;
    if (path_under(path, r.path_prefix)) return &r;
  }
  return nullptr;
}

Verdict Middleware::check(const RequestInfo& request) const {
  Verdict v;
  v.route = route_for(request.method, request.path);
  if (!v.route) return v;
  const RouteLimit& route = *v.route;

  std::string_view who = request.client_ip;
  std::string_view kind = "ip";
  if (route.key_by != KeyBy::kClientIp && request.headers) {
    const std::string_view name = route.key_by == KeyBy::kApiKey ? std::string_view("X-API-Key")
                                                                 : std::string_view(route.header);
    if (const std::string_view value = request.headers(name); !value.empty()) {
      who = value;
      kind = route.key_by == KeyBy::kApiKey ? "key" : "header";
    }
  }
  // One counter per route and caller; a caller's IP and API key never share one.
  std::string key = "app/";
  key += route.name;
  key += '/';
  key += kind;
  key += '/';
  key += who;
  v.outcome = limiter_.check(key, route.policy, route.cost, failure_mode_);
  const Decision& d = v.outcome.decision;

  const bool resets = d.reset_after != kNever;
  const std::int64_t reset_s = resets ? ceil_seconds(d.reset_after) : 0;
  const std::string name = quoted(route.name);
  const std::int64_t window_s = ceil_seconds(route.policy.window());
  v.headers.emplace_back("RateLimit-Policy", window_s > 0 ? name + ";q=" + std::to_string(d.limit) +
                                                                ";w=" + std::to_string(window_s)
                                                          : name + ";q=" + std::to_string(d.limit));
  v.headers.emplace_back("RateLimit", name + ";r=" + std::to_string(d.remaining) +
                                          (resets ? ";t=" + std::to_string(reset_s) : ""));
  v.headers.emplace_back("X-RateLimit-Limit", std::to_string(d.limit));
  v.headers.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
  if (resets) {  // the Unix time (seconds) at which the limit is whole again
    v.headers.emplace_back("X-RateLimit-Reset",
                           std::to_string(ceil_seconds(clock_.now() + d.reset_after)));
  }
  if (d.allowed) return v;

  v.limited = true;
  v.status = 429;
  const bool can_retry = d.retry_after != kNever && d.reason != DenyReason::kCostExceedsCapacity;
  if (can_retry) v.headers.emplace_back("Retry-After", std::to_string(ceil_seconds(d.retry_after)));
  v.body = R"({"error":{"code":"rate_limited","message":)";
  core::append_json_string(v.body, "too many requests for " + route.name);
  v.body += R"(,"retry_after_s":)";
  v.body += can_retry ? std::to_string(ceil_seconds(d.retry_after)) : std::string("null");
  v.body += "}}";
  return v;
}

}  // namespace floodgate
