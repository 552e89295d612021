// File: admin/admin_api.h
//
// AdminApi: the admin listener's endpoints (ADMIN_PORT, 8082 on 127.0.0.1 by default), apart from
// the check port as Envoy and envoyproxy/ratelimit keep theirs. JSON in and out; errors as the
// check API's, {"error": {"code", "message", "field"}}.
//
//   GET    /admin/allowlist, /admin/blocklist          the live entries
//   POST   /admin/allowlist, /admin/blocklist          {"ip": "<address or CIDR>"} or
//                                                      {"key": "..."}, optional "expires_in_s",
//                                                      "note": 201 with the stored entry
//   DELETE /admin/allowlist/<id>, /admin/blocklist/<id> 204, or 404 when unknown
//
// Access: with a token (ADMIN_TOKEN) every request needs "Authorization: Bearer <token>"
// (compared in constant time; 401 with WWW-Authenticate otherwise). Without one, GET requests are
// answered and every change is refused (403, admin_token_not_configured). Every change writes one
// audit line (what, which entry, from which address); the token never appears in one.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "admin/access_lists.h"
#include "server/http/api.h"

namespace floodgate::admin {

struct AdminOptions {
  std::string token;  // empty: read-only
  // Told one JSON object per change (the audit log). Optional.
  std::function<void(std::string_view json)> audit;
  // Counts the admin port's responses (floodgate_http_requests_total is the check port's).
  std::function<void(int status)> count_status;
};

class AdminApi final : public http::Handler {
 public:
  // `lists` is borrowed and must outlive the AdminApi. Thread-safe.
  AdminApi(AccessLists& lists, AdminOptions options);

  void handle(const http::Request& request, http::Exchange& exchange) override;
  void record_status(int status) override;

  // handle(): the answer, directly (tests).
  http::Response handle(const http::Request& request);

 private:
  http::Response route(const http::Request& request);
  http::Response list_route(const http::Request& request, ListKind list, std::string_view rest);
  std::optional<http::Response> authorize(const http::Request& request, bool change) const;
  void audit(std::string_view action, const ListEntry& entry, std::string_view from) const;

  AccessLists& lists_;
  AdminOptions options_;
};

// entry_json(): an entry as the admin API shows it.
std::string entry_json(const ListEntry& entry, Micros now);

}  // namespace floodgate::admin
