// File: floodgate/middleware.h
//
// Middleware: rate limiting for an application's own HTTP server, whatever library serves it.
// The application describes its routes' limits once — which requests (method, path prefix),
// which policy, and what identifies a caller (client IP, a header, an API key) — and asks the
// middleware about each request before handling it. The verdict says whether to go on, and
// carries the headers to send either way and, when limited, the whole 429 answer.
//
// Example (examples/api_server.cc has a whole server):
//   floodgate::Middleware limits(limiter, {
//       {.name = "public", .path_prefix = "/api/public",
//        .policy = floodgate::Policy::fixed_window(10, std::chrono::minutes(1)).value()},
//       {.name = "write", .method = "POST", .path_prefix = "/api/data",
//        .policy = floodgate::Policy::token_bucket(5, 5.0 / 60).value(),
//        .key_by = floodgate::KeyBy::kApiKey},
//   });
//   floodgate::Verdict v = limits.check({.method = "GET", .path = "/api/public/x",
//                                        .client_ip = "10.0.0.1", .headers = lookup});
//   for (auto& [name, value] : v.headers) response.set(name, value);
//   if (v.limited) return send(v.status, v.body);   // 429, JSON error body
//
// Thread safety: check() may be called from any number of threads (the Limiter's store is).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/clock.h"
#include "floodgate/limiter.h"

namespace floodgate {

enum class KeyBy : std::uint8_t {
  kClientIp,  // the request's client address
  kHeader,    // the value of `header`; the client address when the header is absent
  kApiKey,    // the X-API-Key header; the client address when absent
};

struct RouteLimit {
  std::string name = {};    // in the key and the RateLimit-Policy header; unique per middleware
  std::string method = {};  // "" matches every method
  std::string path_prefix = {};  // matches the path itself and anything below it ("/api/data/...")
  Policy policy;
  KeyBy key_by = KeyBy::kClientIp;
  std::string header = {};  // for KeyBy::kHeader
  std::uint64_t cost = 1;
};

struct RequestInfo {
  std::string_view method;
  std::string_view path;  // without the query
  std::string_view client_ip;
  // headers(name): the value of a request header (case-insensitive name), "" when absent.
  std::function<std::string_view(std::string_view)> headers = nullptr;
};

struct Verdict {
  bool limited = false;
  const RouteLimit* route = nullptr;  // null: no limit applies to the request
  int status = 200;                   // 429 when limited
  std::string body;                   // the JSON error when limited
  std::vector<std::pair<std::string, std::string>>
      headers;  // RateLimit-*, X-RateLimit-*, Retry-After
  Outcome outcome;
};

class Middleware {
 public:
  // `limiter` is borrowed and must outlive the middleware. The first matching route applies:
  // list specific ones before general ones. `clock` dates X-RateLimit-Reset (borrowed).
  Middleware(Limiter& limiter, std::vector<RouteLimit> routes,
             FailureMode failure_mode = FailureMode::kFailOpen,
             const Clock& clock = system_clock());

  Verdict check(const RequestInfo& request) const;

  // route_for(): the limit a request falls under, or null.
  const RouteLimit* route_for(std::string_view method, std::string_view path) const;

 private:
  Limiter& limiter_;
  std::vector<RouteLimit> routes_;
  FailureMode failure_mode_;
  const Clock& clock_;
};

}  // namespace floodgate
