#include "admin/admin_api.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "admin/dashboard.h"
#include "admin/records.h"
#include "core/json_text.h"
#include "server/http/target.h"

namespace floodgate::admin {
namespace {

using core::append_json_string;
using http::ApiError;
using http::Request;
using http::Response;

constexpr std::size_t kMaxBodyBytes = 16 * 1024;
constexpr std::size_t kTopKeys = 20;

Response error(int status, std::string code, std::string field, std::string message) {
  return http::Api::error_response(
      ApiError{status, std::move(code), std::move(message), std::move(field)});
}

Response json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response no_content() {
  Response r = json(204, "");
  r.content_type = {};
  return r;
}

Response method_not_allowed(std::string_view path, std::string_view allow) {
  Response r = error(405, "method_not_allowed", "", fmt::format("{} takes {}", path, allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

Response store_unavailable(const std::string& why) {
  return error(503, "store_unavailable", "",
               "the shared store could not save the change, so no instance applies it: " + why);
}

Micros wall_now() {
  return std::chrono::duration_cast<Micros>(std::chrono::system_clock::now().time_since_epoch());
}

// equal_secret(): compares in time that depends only on the expected secret's length, not on where
// the first difference is.
bool equal_secret(std::string_view given, std::string_view expected) {
  unsigned diff = given.size() == expected.size() ? 0U : 1U;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const unsigned g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0U;
    diff |= g ^ static_cast<unsigned>(static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

// parse_object(): the body as a JSON object, or the 4xx that says why not.
std::variant<boost::json::object, Response> parse_object(std::string_view body) {
  if (body.size() > kMaxBodyBytes) {
    return error(413, "body_too_large", "",
                 fmt::format("the body is larger than {} bytes", kMaxBodyBytes));
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec);
  if (ec) return error(400, "invalid_json", "", "the body is not valid JSON: " + ec.message());
  if (!v.is_object()) return error(400, "invalid_json", "", "the body must be a JSON object");
  return std::move(v.as_object());
}

std::optional<Response> read_expiry(const boost::json::value& value, std::optional<double>& out) {
  if (value.is_null()) return std::nullopt;
  if (!value.is_number())
    return error(400, "invalid_parameter", "expires_in_s", "must be a number");
  out = value.to_number<double>();
  return std::nullopt;
}

// parse_new_entry(): the body of POST /admin/allowlist or /admin/blocklist.
std::variant<NewEntry, Response> parse_new_entry(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* failed = std::get_if<Response>(&parsed)) return std::move(*failed);
  NewEntry e;
  for (const auto& [name, value] : std::get<boost::json::object>(parsed)) {
    const std::string field(name);
    if (field == "ip" || field == "key" || field == "note") {
      if (!value.is_string()) return error(400, "invalid_parameter", field, "must be a string");
      std::string text(value.as_string());
      if (field == "ip") e.ip = std::move(text);
      if (field == "key") e.key = std::move(text);
      if (field == "note") e.note = std::move(text);
    } else if (field == "expires_in_s") {
      if (auto bad = read_expiry(value, e.expires_in_s)) return std::move(*bad);
    } else {
      return error(400, "unknown_field", field,
                   "is not a field of an entry (ip, key, expires_in_s, note)");
    }
  }
  return e;
}

// parse_new_override(): the body of POST /admin/limits.
std::variant<NewOverride, Response> parse_new_override(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* failed = std::get_if<Response>(&parsed)) return std::move(*failed);
  NewOverride o;
  for (const auto& [name, value] : std::get<boost::json::object>(parsed)) {
    const std::string field(name);
    std::string problem;
    if (field == "key" || field == "key_prefix" || field == "rule") {
      if (field == "rule" && value.is_null()) continue;
      if (!value.is_string()) return error(400, "invalid_parameter", field, "must be a string");
      std::string text(value.as_string());
      (field == "key" ? o.key : field == "key_prefix" ? o.key_prefix : o.rule) = std::move(text);
    } else if (field == "expires_in_s") {
      if (auto bad = read_expiry(value, o.expires_in_s)) return std::move(*bad);
    } else if (read_policy_field(field, value, o.spec, problem)) {
      if (!problem.empty()) return error(400, "invalid_parameter", field, problem);
    } else {
      return error(400, "unknown_field", field,
                   "is not a field of an override (key or key_prefix, rule, algorithm and its "
                   "parameters, expires_in_s)");
    }
  }
  return o;
}

// Figures: one instance's stats, as it publishes them in its report (report_json()) and as the
// cluster scope reads them back (read_report()) to add them up.
struct Figures {
  std::string id;
  std::string version;
  std::string store;
  std::int64_t started_us = 0;
  std::int64_t reported_us = 0;
  std::map<std::string, std::uint64_t> decisions;
  std::map<std::string, std::array<std::uint64_t, 3>> rules;  // allowed, denied, degraded
  std::map<std::int64_t, std::pair<std::uint64_t, std::uint64_t>> history;  // second → counts
  std::vector<std::uint64_t> latency;                                       // histogram
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> top;       // key → count, error
};

std::string report_json(const Figures& f) {
  std::string out = "{\"id\":";
  append_json_string(out, f.id);
  out += ",\"version\":";
  append_json_string(out, f.version);
  out += ",\"store\":";
  append_json_string(out, f.store);
  auto it = std::back_inserter(out);
  fmt::format_to(it, ",\"started_us\":{},\"reported_us\":{},\"decisions\":{{", f.started_us,
                 f.reported_us);
  const char* sep = "";
  for (const auto& [k, v] : f.decisions) {
    out += sep;
    append_json_string(out, k);
    fmt::format_to(it, ":{}", v);
    sep = ",";
  }
  out += "},\"rules\":[";
  sep = "";
  for (const auto& [rule, v] : f.rules) {
    out += sep;
    out += '[';
    append_json_string(out, rule);
    fmt::format_to(it, ",{},{},{}]", v[0], v[1], v[2]);
    sep = ",";
  }
  out += "],\"history\":[";
  sep = "";
  for (const auto& [t, v] : f.history) {
    fmt::format_to(it, "{}[{},{},{}]", sep, t, v.first, v.second);
    sep = ",";
  }
  out += "],\"latency\":[";
  sep = "";
  for (const std::uint64_t c : f.latency) {
    fmt::format_to(it, "{}{}", sep, c);
    sep = ",";
  }
  out += "],\"top\":[";
  sep = "";
  for (const auto& [key, v] : f.top) {
    out += sep;
    out += '[';
    append_json_string(out, key);
    fmt::format_to(it, ",{},{}]", v.first, v.second);
    sep = ",";
  }
  out += "]}";
  return out;
}

std::uint64_t u64(const boost::json::value* v) {
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64()) return static_cast<std::uint64_t>(std::max<std::int64_t>(0, v->as_int64()));
  return 0;
}

std::optional<Figures> read_report(std::string_view text) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  Figures f;
  if (const auto* id = o.if_contains("id"); id && id->is_string()) f.id = id->as_string();
  f.started_us = static_cast<std::int64_t>(u64(o.if_contains("started_us")));
  f.reported_us = static_cast<std::int64_t>(u64(o.if_contains("reported_us")));
  if (const auto* d = o.if_contains("decisions"); d && d->is_object()) {
    for (const auto& [k, value] : d->as_object()) f.decisions[std::string(k)] = u64(&value);
  }
  if (const auto* rules = o.if_contains("rules"); rules && rules->is_array()) {
    for (const auto& r : rules->as_array()) {
      if (!r.is_array() || r.as_array().size() != 4 || !r.as_array()[0].is_string()) continue;
      const auto& a = r.as_array();
      f.rules[std::string(a[0].as_string())] = {u64(&a[1]), u64(&a[2]), u64(&a[3])};
    }
  }
  if (const auto* h = o.if_contains("history"); h && h->is_array()) {
    for (const auto& s : h->as_array()) {
      if (!s.is_array() || s.as_array().size() != 3) continue;
      const auto& a = s.as_array();
      f.history[static_cast<std::int64_t>(u64(&a[0]))] = {u64(&a[1]), u64(&a[2])};
    }
  }
  if (const auto* l = o.if_contains("latency"); l && l->is_array()) {
    for (const auto& c : l->as_array()) f.latency.push_back(u64(&c));
  }
  if (const auto* t = o.if_contains("top"); t && t->is_array()) {
    for (const auto& e : t->as_array()) {
      if (!e.is_array() || e.as_array().size() != 3 || !e.as_array()[0].is_string()) continue;
      const auto& a = e.as_array();
      f.top[std::string(a[0].as_string())] = {u64(&a[1]), u64(&a[2])};
    }
  }
  return f;
}

// own_figures(): this instance's figures now.
Figures own_figures(const AdminParts& parts, const AdminOptions& options, Micros started,
                    Micros now) {
  Figures f;
  f.id = options.instance_id;
  f.version = options.version;
  f.store = std::string(parts.store->name());
  f.started_us = started.count();
  f.reported_us = now.count();
  const auto totals = parts.metrics->totals();
  f.decisions = {{"allowed", totals.allowed},
                 {"denied", totals.denied},
                 {"degraded", totals.degraded},
                 {"allowlisted", totals.allowlisted},
                 {"blocklisted", totals.blocklisted}};
  for (const auto& r : totals.rules) f.rules[r.rule] = {r.allowed, r.denied, r.degraded};
  for (const Stats::Second& second : parts.stats->history()) {
    f.history[second.t] = {second.allowed, second.denied};
  }
  f.latency = parts.stats->latency_counts();
  for (const TopEntry& e : parts.stats->top_keys().top(kTopKeys)) f.top[e.key] = {e.count, e.error};
  return f;
}

}  // namespace

AdminApi::AdminApi(AdminParts parts, AdminOptions options)
    : parts_(parts), options_(std::move(options)), started_(wall_now()) {}

void AdminApi::record_status(int status) {
  if (options_.count_status) options_.count_status(status);
}

void AdminApi::handle(const Request& request, http::Exchange& exchange) {
  route(request, [this, &exchange](Response r) {
    record_status(r.status);
    exchange.respond(std::move(r));
  });
}

Response AdminApi::handle(const Request& request) {
  struct Waiter {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Response> response;
  };
  auto waiter = std::make_shared<Waiter>();
  route(request, [this, waiter](Response r) {
    record_status(r.status);
    std::lock_guard lock(waiter->mu);
    waiter->response = std::move(r);
    waiter->cv.notify_one();
  });
  std::unique_lock lock(waiter->mu);
  waiter->cv.wait(lock, [&] { return waiter->response.has_value(); });
  return std::move(*waiter->response);
}

std::optional<Response> AdminApi::authorize(const Request& request, bool change) const {
  if (options_.token.empty()) {
    if (!change) return std::nullopt;
    return error(403, "admin_token_not_configured", "",
                 "changes need ADMIN_TOKEN to be set on this instance; without it the admin API "
                 "is read-only");
  }
  std::string_view given = request.headers.get("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  const bool bearer = given.size() >= kBearer.size() &&
                      std::equal(kBearer.begin(), kBearer.end(), given.begin(), [](char a, char b) {
                        return std::tolower(static_cast<unsigned char>(a)) ==
                               std::tolower(static_cast<unsigned char>(b));
                      });
  if (bearer && equal_secret(given.substr(kBearer.size()), options_.token)) return std::nullopt;
  Response r = error(401, "unauthorized", "",
                     given.empty() ? "this endpoint needs Authorization: Bearer <ADMIN_TOKEN>"
                                   : "the bearer token is not this instance's ADMIN_TOKEN");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"floodgate-admin\"");
  return r;
}

void AdminApi::route(const Request& request, Reply reply) {
  const std::string_view path = http::path_of(request.target);
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (path == "/" || path == "/index.html") {
    if (!get) return reply(method_not_allowed(path, "GET, HEAD"));
    Response r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::string(dashboard_html());
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("Content-Security-Policy",
                           "default-src 'self'; script-src 'unsafe-inline'; style-src "
                           "'unsafe-inline'; img-src 'self' data:; connect-src 'self'");
    return reply(std::move(r));
  }
  if (path == "/rlconfig") {  // envoyproxy/ratelimit's debug endpoint, for its users' runbooks
    if (!get) return reply(method_not_allowed(path, "GET, HEAD"));
    if (auto denied = authorize(request, /*change=*/false)) return reply(*std::move(denied));
    Response r;
    r.content_type = "text/plain; charset=utf-8";
    if (parts_.rlconfig) r.body = parts_.rlconfig();
    return reply(std::move(r));
  }
  if (!path.starts_with("/admin/")) {
    return reply(error(404, "not_found", "", fmt::format("no such endpoint: {}", path)));
  }
  if (auto denied = authorize(request, !get)) return reply(*std::move(denied));
  constexpr std::string_view kAllow = "/admin/allowlist";
  constexpr std::string_view kBlock = "/admin/blocklist";
  constexpr std::string_view kLimits = "/admin/limits";
  if (path.starts_with(kAllow)) {
    return list_route(request, ListKind::kAllow, path.substr(kAllow.size()), std::move(reply));
  }
  if (path.starts_with(kBlock)) {
    return list_route(request, ListKind::kBlock, path.substr(kBlock.size()), std::move(reply));
  }
  if (path.starts_with(kLimits)) {
    return limits_route(request, path.substr(kLimits.size()), std::move(reply));
  }
  if (path == "/admin/reset") {
    if (request.method != "POST") return reply(method_not_allowed(path, "POST"));
    return reset(request, std::move(reply));
  }
  if (path == "/admin/stats" || path == "/admin/events" || path == "/admin/rules") {
    if (!get) return reply(method_not_allowed(path, "GET, HEAD"));
    const std::string scope = http::query_param(request.target, "scope").value_or("");
    if (!scope.empty() && scope != "instance" && scope != "cluster") {
      return reply(error(400, "invalid_parameter", "scope", "must be \"instance\" or \"cluster\""));
    }
    const bool cluster = scope == "cluster";
    if (path == "/admin/stats") return reply(stats(cluster));
    if (path == "/admin/events") return reply(events(cluster));
    return reply(rules());
  }
  reply(error(404, "not_found", "", fmt::format("no such endpoint: {}", path)));
}

void AdminApi::share(const std::string& id, const std::string& record,
                     const std::vector<std::string>& replaces, Fleet::Done then) {
  if (parts_.fleet == nullptr) return then("");
  if (record.empty()) return parts_.fleet->erase(id, std::move(then));
  parts_.fleet->save(id, record, replaces, std::move(then));
}

void AdminApi::list_route(const Request& request, ListKind list, std::string_view rest,
                          Reply reply) {
  AccessLists& lists = *parts_.lists;
  const std::string_view name = to_string(list);
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (rest.empty() || rest == "/") {
    if (get) {
      const Micros now = wall_now();
      const auto entries = lists.entries(list);
      std::string body = "{\"list\":";
      append_json_string(body, name);
      fmt::format_to(std::back_inserter(body), ",\"count\":{},\"entries\":[", entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) body += ',';
        body += entry_json(entries[i], now);
      }
      body += "]}";
      return reply(json(200, std::move(body)));
    }
    if (request.method != "POST") {
      return reply(method_not_allowed(fmt::format("/admin/{}", name), "GET, HEAD, POST"));
    }
    auto parsed = parse_new_entry(request.body);
    if (auto* failed = std::get_if<Response>(&parsed)) return reply(std::move(*failed));
    NewEntry entry = std::get<NewEntry>(std::move(parsed));
    entry.added_by = std::string(request.peer_address);
    std::vector<ListEntry> replaced;
    auto added = lists.add(list, entry, &replaced);
    if (auto* refused = std::get_if<AccessLists::AddError>(&added)) {
      return reply(error(refused->status, refused->code, refused->field, refused->message));
    }
    ListEntry stored = std::get<ListEntry>(std::move(added));
    const std::string from(request.peer_address);
    const std::string id = stored.id;
    const std::string stored_record = record(stored);
    std::vector<std::string> replaced_ids;
    for (const ListEntry& e : replaced) replaced_ids.push_back(e.id);
    share(id, stored_record, replaced_ids,
          [this, list, stored = std::move(stored), replaced = std::move(replaced), from,
           reply](const std::string& why) {
            if (!why.empty()) {
              // Not saved: this instance goes back to what the fleet has.
              parts_.lists->remove(list, stored.id);
              for (const ListEntry& e : replaced) parts_.lists->put(e);
              return reply(store_unavailable(why));
            }
            audit("add", record(stored), from);
            reply(json(201, entry_json(stored, stored.created)));
          });
    return;
  }
  // /admin/<list>/<id>
  const std::string_view id = rest.substr(1);
  if (rest.front() != '/' || id.empty() || id.find('/') != std::string_view::npos) {
    return reply(
        error(404, "not_found", "", fmt::format("no such endpoint: /admin/{}{}", name, rest)));
  }
  if (request.method != "DELETE") {
    return reply(method_not_allowed(fmt::format("/admin/{}/<id>", name), "DELETE"));
  }
  auto removed = lists.remove(list, id);
  if (!removed) {
    return reply(error(404, "not_found", "id", fmt::format("no entry {} in the {}", id, name)));
  }
  const std::string from(request.peer_address);
  const std::string removed_id = removed->id;
  share(removed_id, "", {},
        [this, removed = std::move(*removed), from, reply](const std::string& why) {
          if (!why.empty()) {
            parts_.lists->put(removed);
            return reply(store_unavailable(why));
          }
          audit("remove", record(removed), from);
          reply(no_content());
        });
}

void AdminApi::limits_route(const Request& request, std::string_view rest, Reply reply) {
  Overrides& overrides = *parts_.overrides;
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (rest.empty() || rest == "/") {
    if (get) {
      const Micros now = wall_now();
      const auto entries = overrides.entries();
      std::string body = fmt::format("{{\"count\":{},\"overrides\":[", entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) body += ',';
        body += override_json(entries[i], now);
      }
      body += "]}";
      return reply(json(200, std::move(body)));
    }
    if (request.method != "POST") {
      return reply(method_not_allowed("/admin/limits", "GET, HEAD, POST"));
    }
    auto parsed = parse_new_override(request.body);
    if (auto* failed = std::get_if<Response>(&parsed)) return reply(std::move(*failed));
    NewOverride asked = std::get<NewOverride>(std::move(parsed));
    asked.added_by = std::string(request.peer_address);
    auto known_rule = [this](std::string_view name) {
      return parts_.rules != nullptr && parts_.rules->current().find(name) != nullptr;
    };
    std::vector<Override> replaced;
    auto added = overrides.add(asked, known_rule, &replaced);
    if (auto* refused = std::get_if<Overrides::AddError>(&added)) {
      return reply(error(refused->status, refused->code, refused->field, refused->message));
    }
    Override stored = std::get<Override>(std::move(added));
    const std::string from(request.peer_address);
    const std::string id = stored.id;
    const std::string stored_record = record(stored);
    std::vector<std::string> replaced_ids;
    for (const Override& o : replaced) replaced_ids.push_back(o.id);
    share(id, stored_record, replaced_ids,
          [this, stored = std::move(stored), replaced = std::move(replaced), from,
           reply](const std::string& why) {
            if (!why.empty()) {
              // Not saved: this instance goes back to what the fleet has.
              parts_.overrides->remove(stored.id);
              for (const Override& o : replaced) parts_.overrides->put(o);
              return reply(store_unavailable(why));
            }
            audit("set_limit", record(stored), from);
            reply(json(201, override_json(stored, stored.created)));
          });
    return;
  }
  const std::string_view id = rest.substr(1);
  if (rest.front() != '/' || id.empty() || id.find('/') != std::string_view::npos) {
    return reply(
        error(404, "not_found", "", fmt::format("no such endpoint: /admin/limits{}", rest)));
  }
  if (request.method != "DELETE") return reply(method_not_allowed("/admin/limits/<id>", "DELETE"));
  auto removed = overrides.remove(id);
  if (!removed) {
    return reply(error(404, "not_found", "id", fmt::format("no override {}", id)));
  }
  const std::string from(request.peer_address);
  const std::string removed_id = removed->id;
  share(removed_id, "", {},
        [this, removed = std::move(*removed), from, reply](const std::string& why) {
          if (!why.empty()) {
            parts_.overrides->put(removed);
            return reply(store_unavailable(why));
          }
          audit("remove_limit", record(removed), from);
          reply(no_content());
        });
}

void AdminApi::reset(const Request& request, Reply reply) {
  auto parsed = parse_object(request.body);
  if (auto* failed = std::get_if<Response>(&parsed)) return reply(std::move(*failed));
  std::optional<std::string> key;
  std::optional<std::string> rule_name;
  for (const auto& [name, value] : std::get<boost::json::object>(parsed)) {
    const std::string field(name);
    if (field != "key" && field != "rule") {
      return reply(error(400, "unknown_field", field, "is not a field of a reset (key, rule)"));
    }
    if (field == "rule" && value.is_null()) continue;
    if (!value.is_string())
      return reply(error(400, "invalid_parameter", field, "must be a string"));
    (field == "key" ? key : rule_name) = std::string(value.as_string());
  }
  if (!key) return reply(error(400, "missing_field", "key", "is required"));
  if (key->empty() || key->size() > http::kMaxKeyBytes) {
    return reply(error(400, "invalid_parameter", "key",
                       fmt::format("must be 1 to {} bytes", http::kMaxKeyBytes)));
  }
  // The store keys the checks of this key use: inline checks use the key itself; a rule's checks
  // "rule/<rule>/<tier>/<key>" (and /v1/auth's "auth/<rule>/<tier>/<key>"); /v1/auth without a
  // rule "api_key:<key>" and "ip:<key>".
  std::vector<std::string> keys;
  const rules::RuleSet* set = parts_.rules ? &parts_.rules->current() : nullptr;
  auto add_rule = [&](const rules::Rule& rule) {
    std::vector<std::string_view> tiers = {""};
    if (rule.tiers) {
      for (const auto& [tier, policy] : rule.tiers->policies) tiers.push_back(tier);
    }
    for (const std::string_view tier : tiers) {
      keys.push_back(fmt::format("rule/{}/{}/{}", rule.name, tier, *key));
      keys.push_back(fmt::format("auth/{}/{}/{}", rule.name, tier, *key));
    }
  };
  if (rule_name) {
    const rules::Rule* rule = set ? set->find(*rule_name) : nullptr;
    if (rule == nullptr)
      return reply(error(400, "unknown_rule", "rule", "names no configured rule"));
    add_rule(*rule);
  } else {
    keys.push_back(*key);
    keys.push_back("api_key:" + *key);
    keys.push_back("ip:" + *key);
    if (set) {
      for (const auto& [name, rule] : set->rules) add_rule(rule);
    }
  }
  struct Pending {
    std::mutex mu;
    std::size_t left = 0;
    StoreStatus worst = StoreStatus::kOk;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = keys.size();
  std::string what = "{\"key\":";
  append_json_string(what, *key);
  what += ",\"rule\":";
  if (rule_name) {
    append_json_string(what, *rule_name);
  } else {
    what += "null";
  }
  what += '}';
  const std::string from(request.peer_address);
  const std::size_t count = keys.size();
  for (const std::string& k : keys) {
    if (parts_.local != nullptr && static_cast<Store*>(parts_.local) != parts_.store) {
      parts_.local->erase(k);
    }
    parts_.store->reset(k, [this, pending, what, from, count, reply](StoreStatus status) {
      std::size_t left = 0;
      StoreStatus worst = StoreStatus::kOk;
      {
        std::lock_guard lock(pending->mu);
        if (status != StoreStatus::kOk) pending->worst = status;
        left = --pending->left;
        worst = pending->worst;
      }
      if (left != 0) return;
      if (worst != StoreStatus::kOk) {
        return reply(
            error(503, "store_unavailable", "",
                  fmt::format("the store could not reset the key ({})", to_string(worst))));
      }
      audit("reset", what, from);
      std::string body = what;
      body.pop_back();
      fmt::format_to(std::back_inserter(body), ",\"reset\":true,\"store_keys\":{}}}", count);
      reply(json(200, std::move(body)));
    });
  }
}

std::string AdminApi::report() const {
  return report_json(own_figures(parts_, options_, started_, wall_now()));
}

std::string AdminApi::stats_json(bool cluster) const {
  const Micros now = wall_now();
  std::vector<std::string> reports;
  if (cluster && parts_.fleet != nullptr) reports = parts_.fleet->reports();
  // This instance's own figures are always the freshest: used in place of its last report.
  std::vector<Figures> all = {own_figures(parts_, options_, started_, now)};
  for (const std::string& r : reports) {
    auto f = read_report(r);
    if (f && f->id != options_.instance_id) all.push_back(std::move(*f));
  }

  Figures sum;
  std::vector<std::uint64_t> latency;
  for (const Figures& f : all) {
    for (const auto& [k, v] : f.decisions) sum.decisions[k] += v;
    for (const auto& [k, v] : f.rules) {
      for (std::size_t i = 0; i < 3; ++i) sum.rules[k][i] += v[i];
    }
    for (const auto& [t, v] : f.history) {
      sum.history[t].first += v.first;
      sum.history[t].second += v.second;
    }
    latency.resize(std::max(latency.size(), f.latency.size()));
    for (std::size_t i = 0; i < f.latency.size(); ++i) latency[i] += f.latency[i];
    for (const auto& [k, v] : f.top) {
      sum.top[k].first += v.first;
      sum.top[k].second += v.second;
    }
  }

  std::string out =
      fmt::format("{{\"scope\":\"{}\",\"instance\":{{\"id\":", cluster ? "cluster" : "instance");
  append_json_string(out, options_.instance_id);
  out += ",\"version\":";
  append_json_string(out, options_.version);
  out += ",\"store\":";
  append_json_string(out, parts_.store->name());
  out += ",\"started_at\":";
  append_time(out, started_);
  fmt::format_to(std::back_inserter(out), ",\"uptime_s\":{:.1f}}},\"instances\":[",
                 static_cast<double>((now - started_).count()) / 1e6);
  for (std::size_t i = 0; i < all.size(); ++i) {
    out += i == 0 ? "{\"id\":" : ",{\"id\":";
    append_json_string(out, all[i].id);
    fmt::format_to(std::back_inserter(out), ",\"uptime_s\":{:.1f},\"reported_s_ago\":{:.1f}}}",
                   static_cast<double>(all[i].reported_us - all[i].started_us) / 1e6,
                   std::max(0.0, static_cast<double>(now.count() - all[i].reported_us) / 1e6));
  }
  auto decision = [&](const char* k) { return sum.decisions[k]; };
  fmt::format_to(std::back_inserter(out),
                 "],\"decisions\":{{\"allowed\":{},\"denied\":{},\"degraded\":{},"
                 "\"allowlisted\":{},\"blocklisted\":{}}}",
                 decision("allowed"), decision("denied"), decision("degraded"),
                 decision("allowlisted"), decision("blocklisted"));
  // Rates from the summed history: the last whole second, and the last 60. For a fleet, the last
  // seconds every instance has reported (reports are up to a couple of seconds old), so that the
  // rate counts every instance rather than this one alone.
  const std::int64_t now_s = now.count() / 1'000'000;
  std::int64_t end_s = now_s;
  for (const Figures& f : all) end_s = std::min(end_s, f.reported_us / 1'000'000);
  auto rate = [&](int seconds) {
    double allowed = 0;
    double denied = 0;
    for (std::int64_t t = end_s - seconds; t < end_s; ++t) {
      if (auto it = sum.history.find(t); it != sum.history.end()) {
        allowed += static_cast<double>(it->second.first);
        denied += static_cast<double>(it->second.second);
      }
    }
    return std::pair{allowed / seconds, denied / seconds};
  };
  const auto [a1, d1] = rate(1);
  const auto [a60, d60] = rate(60);
  const auto l = Stats::percentiles(latency);
  fmt::format_to(std::back_inserter(out),
                 ",\"rate\":{{\"last_1s\":{{\"allowed\":{:.1f},\"denied\":{:.1f}}},"
                 "\"last_1m\":{{\"allowed\":{:.2f},\"denied\":{:.2f}}}}},"
                 "\"latency_ms\":{{\"p50\":{:.3f},\"p99\":{:.3f},\"count\":{}}}",
                 a1, d1, a60, d60, l.p50_ms, l.p99_ms, l.count);
  const StoreHealth h = parts_.store->health();
  out += ",\"store\":{\"name\":";
  append_json_string(out, parts_.store->name());
  fmt::format_to(std::back_inserter(out), ",\"ready\":{},\"state\":", h.ready);
  append_json_string(out, h.state);
  out += ",\"error\":";
  append_json_string(out, h.error);
  fmt::format_to(std::back_inserter(out), ",\"circuit\":\"{}\",\"errors\":{}}}",
                 h.state == "circuit_open" ? "open" : "closed", h.errors);
  out += ",\"rules\":[";
  bool first = true;
  for (const auto& [name, v] : sum.rules) {
    out += first ? "{\"rule\":" : ",{\"rule\":";
    first = false;
    append_json_string(out, name);
    fmt::format_to(std::back_inserter(out), ",\"allowed\":{},\"denied\":{},\"degraded\":{}}}", v[0],
                   v[1], v[2]);
  }
  out += "],\"top_limited\":[";
  std::vector<std::pair<std::string, std::pair<std::uint64_t, std::uint64_t>>> top(sum.top.begin(),
                                                                                   sum.top.end());
  std::stable_sort(top.begin(), top.end(),
                   [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  top.resize(std::min(top.size(), kTopKeys));
  for (std::size_t i = 0; i < top.size(); ++i) {
    out += i == 0 ? "{\"key\":" : ",{\"key\":";
    append_json_string(out, top[i].first);
    fmt::format_to(std::back_inserter(out), ",\"count\":{},\"error\":{}}}", top[i].second.first,
                   top[i].second.second);
  }
  out += "],\"history\":[";
  first = true;
  for (std::int64_t t = now_s - Stats::kHistorySeconds + 1; t < now_s; ++t) {
    const auto it = sum.history.find(t);
    const auto v =
        it == sum.history.end() ? std::pair<std::uint64_t, std::uint64_t>{0, 0} : it->second;
    fmt::format_to(std::back_inserter(out), "{}{{\"t\":{},\"allowed\":{},\"denied\":{}}}",
                   first ? "" : ",", t, v.first, v.second);
    first = false;
  }
  out += "]}";
  return out;
}

Response AdminApi::stats(bool cluster) const { return json(200, stats_json(cluster)); }

Response AdminApi::events(bool cluster) const {
  auto event = [this, cluster] { return "event: stats\ndata: " + stats_json(cluster) + "\n\n"; };
  Response r;
  r.content_type = "text/event-stream";
  r.body = "retry: 2000\n\n" + event();
  r.next = [event]() -> std::optional<std::string> { return event(); };
  r.stream_every = options_.events_every;
  r.headers.emplace_back("X-Accel-Buffering", "no");  // nginx: do not buffer the stream
  return r;
}

Response AdminApi::rules() const {
  std::string out = "{\"rules\":[";
  if (parts_.rules != nullptr) {
    const rules::RuleSet& set = parts_.rules->current();
    bool first = true;
    for (const auto& [name, rule] : set.rules) {
      out += first ? "{\"name\":" : ",{\"name\":";
      first = false;
      append_json_string(out, name);
      out += ",\"algorithm\":";
      append_json_string(out, to_string(rule.policy.algorithm()));
      std::ostringstream description;
      description << rule.policy;
      out += ",\"description\":";
      append_json_string(out, description.str());
      out += ",\"failure_mode\":";
      if (rule.failure_mode) {
        append_json_string(out, to_string(*rule.failure_mode));
      } else {
        out += "null";
      }
      out += ",\"tiers\":[";
      if (rule.tiers) {
        bool first_tier = true;
        for (const auto& [tier, policy] : rule.tiers->policies) {
          out += first_tier ? "{\"tier\":" : ",{\"tier\":";
          first_tier = false;
          append_json_string(out, tier);
          std::ostringstream d;
          d << policy;
          out += ",\"description\":";
          append_json_string(out, d.str());
          out += '}';
        }
      }
      out += "]}";
    }
  }
  out += "]}";
  return json(200, std::move(out));
}

void AdminApi::audit(std::string_view action, std::string_view what, std::string_view from) const {
  if (!options_.audit) return;
  std::string line = "{\"audit\":\"admin\",\"action\":";
  append_json_string(line, action);
  line += ",\"what\":";
  line += what;
  line += ",\"from\":";
  append_json_string(line, from);
  line += '}';
  options_.audit(line);
}

}  // namespace floodgate::admin
