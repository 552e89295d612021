// File: admin/admin_api.h
//
// AdminApi: the admin listener's endpoints (ADMIN_PORT, 8082 on 127.0.0.1 by default), apart from
// the check port as Envoy and envoyproxy/ratelimit keep theirs. JSON in and out; errors as the
// check API's, {"error": {"code", "message", "field"}}.
//
//   GET    /                                             the live dashboard (one embedded page)
//   GET    /admin/allowlist, /admin/blocklist            the live entries
//   POST   /admin/allowlist, /admin/blocklist            {"ip": "<address or CIDR>"} or
//                                                        {"key": "..."}, optional "expires_in_s",
//                                                        "note": 201 with the stored entry
//   DELETE /admin/allowlist/<id>, /admin/blocklist/<id>  204, or 404 when unknown
//   GET    /admin/limits                                 the runtime overrides
//   POST   /admin/limits                                 {"key" | "key_prefix", "rule"?,
//                                                        "algorithm", <parameters>,
//                                                        "expires_in_s"?}: 201 with the override
//   DELETE /admin/limits/<id>                            204, or 404 when unknown
//   POST   /admin/reset                                  {"key", "rule"?}: the key's state is
//                                                        fresh again in the store
//   GET    /admin/stats[?scope=cluster]                  this instance's (or the fleet's) figures
//   GET    /admin/events[?scope=cluster]                 the same, as Server-Sent Events
//                                                        once a second
//   GET    /admin/rules                                  the configured rules
//   GET    /rlconfig                                     the Envoy rate limit config as
//                                                        envoyproxy/ratelimit prints it on its
//                                                        debug port (text, one line per limit)
//
// Access: with a token (ADMIN_TOKEN) every /admin request needs "Authorization: Bearer <token>"
// (compared in constant time; 401 with WWW-Authenticate otherwise). Without one, GET requests are
// answered and every change is refused (403, admin_token_not_configured). The dashboard page itself
// holds no data and needs no token (the operator types it into the page). Every change writes one
// audit line (what, which entry, from which address); the token never appears in one.
//
// With a Fleet (a shared store), a change is saved there before it is answered (503
// store_unavailable when it cannot be), and every instance applies it: at once when the change's
// announcement reaches it, within a poll interval (250 ms) when it is lost.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "admin/access_lists.h"
#include "admin/fleet.h"
#include "admin/overrides.h"
#include "admin/stats.h"
#include "floodgate/memory_store.h"
#include "floodgate/store.h"
#include "observe/metrics.h"
#include "rules/rule_set.h"
#include "server/http/api.h"

namespace floodgate::admin {

// AdminParts: what the admin API steers and reads; borrowed, they must outlive it.
struct AdminParts {
  AccessLists* lists = nullptr;
  Overrides* overrides = nullptr;
  Stats* stats = nullptr;
  observe::Metrics* metrics = nullptr;
  Store* store = nullptr;        // the store decisions use (reset, health)
  MemoryStore* local = nullptr;  // the in-process store, reset too (may be `store` itself)
  const rules::RuleStore* rules = nullptr;  // null: no rules configured
  Fleet* fleet = nullptr;                   // null: changes are local to this process
  // The Envoy rate limit config in envoyproxy/ratelimit's /rlconfig text (rls::dump()). Null: no
  // such config is served, and /rlconfig answers an empty text.
  std::function<std::string()> rlconfig;
};

struct AdminOptions {
  std::string token;  // empty: read-only
  // Told one JSON object per change (the audit log). Optional.
  std::function<void(std::string_view json)> audit;
  // Counts the admin port's responses (floodgate_http_requests_total is the check port's).
  std::function<void(int status)> count_status;
  std::string instance_id;  // e.g. "host:pid"
  std::string version;
  std::chrono::milliseconds events_every{1000};  // /admin/events
};

class AdminApi final : public http::Handler {
 public:
  // Thread-safe.
  AdminApi(AdminParts parts, AdminOptions options);

  void handle(const http::Request& request, http::Exchange& exchange) override;
  void record_status(int status) override;

  // handle(): the answer, waited for (tests).
  http::Response handle(const http::Request& request);

  // set_fleet(): the fleet changes are shared with (made once, before serving).
  void set_fleet(Fleet* fleet) { parts_.fleet = fleet; }

  // report(): this instance's stats report (JSON), as a Fleet publishes it.
  std::string report() const;

 private:
  using Reply = std::function<void(http::Response)>;

  // route(): answers through `reply`, at once or once a shared store has answered.
  void route(const http::Request& request, Reply reply);
  void list_route(const http::Request& request, ListKind list, std::string_view rest, Reply reply);
  void limits_route(const http::Request& request, std::string_view rest, Reply reply);
  void reset(const http::Request& request, Reply reply);
  http::Response stats(bool cluster) const;  // cluster: the fleet's figures (?scope=cluster)
  http::Response events(bool cluster) const;
  http::Response rules() const;
  std::string stats_json(bool cluster) const;
  std::optional<http::Response> authorize(const http::Request& request, bool change) const;
  // share(): saves (or, with an empty record, erases) `id` in the fleet; then `then("")` or
  // `then(error)`. Without a fleet, `then("")` at once.
  void share(const std::string& id, const std::string& record,
             const std::vector<std::string>& replaces, Fleet::Done then);
  void audit(std::string_view action, std::string_view what, std::string_view from) const;

  AdminParts parts_;
  AdminOptions options_;
  Micros started_;
};

}  // namespace floodgate::admin
