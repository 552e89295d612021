#include "admin/admin_api.h"

#include <ctime>

#include <fmt/format.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/json_text.h"

namespace floodgate::admin {
namespace {

using core::append_json_string;
using http::ApiError;
using http::Request;
using http::Response;

constexpr std::size_t kMaxBodyBytes = 16 * 1024;

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

// The path without its query.
std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

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

void append_time(std::string& out, Micros t) {
  const std::time_t seconds = static_cast<std::time_t>(t.count() / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (t.count() / 1000) % 1000);
}

// parse_new_entry(): the body of POST /admin/allowlist or /admin/blocklist.
std::variant<NewEntry, Response> parse_new_entry(std::string_view body) {
  if (body.size() > kMaxBodyBytes) {
    return error(413, "body_too_large", "",
                 fmt::format("the body is larger than {} bytes", kMaxBodyBytes));
  }
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  if (ec) return error(400, "invalid_json", "", "the body is not valid JSON: " + ec.message());
  if (!v.is_object()) return error(400, "invalid_json", "", "the body must be a JSON object");
  NewEntry e;
  for (const auto& [name, value] : v.as_object()) {
    const std::string field(name);
    if (field == "ip" || field == "key" || field == "note") {
      if (!value.is_string()) return error(400, "invalid_parameter", field, "must be a string");
      std::string text(value.as_string());
      if (field == "ip") e.ip = std::move(text);
      if (field == "key") e.key = std::move(text);
      if (field == "note") e.note = std::move(text);
    } else if (field == "expires_in_s") {
      if (value.is_null()) continue;
      if (!value.is_number()) return error(400, "invalid_parameter", field, "must be a number");
      e.expires_in_s = value.to_number<double>();
    } else {
      return error(400, "unknown_field", field,
                   "is not a field of an entry (ip, key, expires_in_s, note)");
    }
  }
  return e;
}

}  // namespace

std::string entry_json(const ListEntry& e, Micros now) {
  std::string out = "{\"id\":";
  append_json_string(out, e.id);
  out += ",\"list\":";
  append_json_string(out, to_string(e.list));
  out += e.is_ip ? ",\"ip\":" : ",\"key\":";
  append_json_string(out, e.value);
  out += ",\"note\":";
  append_json_string(out, e.note);
  out += ",\"added_by\":";
  append_json_string(out, e.added_by);
  out += ",\"created_at\":";
  append_time(out, e.created);
  out += ",\"expires_at\":";
  if (e.expires.count() == 0) {
    out += "null,\"expires_in_s\":null";
  } else {
    append_time(out, e.expires);
    fmt::format_to(std::back_inserter(out), ",\"expires_in_s\":{:.3f}",
                   static_cast<double>(std::max<std::int64_t>(0, (e.expires - now).count())) / 1e6);
  }
  out += '}';
  return out;
}

AdminApi::AdminApi(AccessLists& lists, AdminOptions options)
    : lists_(lists), options_(std::move(options)) {}

void AdminApi::record_status(int status) {
  if (options_.count_status) options_.count_status(status);
}

void AdminApi::handle(const Request& request, http::Exchange& exchange) {
  exchange.respond(handle(request));
}

Response AdminApi::handle(const Request& request) {
  Response r = route(request);
  record_status(r.status);
  return r;
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

Response AdminApi::route(const Request& request) {
  const std::string_view path = path_of(request.target);
  const bool change = request.method != "GET" && request.method != "HEAD";
  if (auto denied = authorize(request, change)) return *std::move(denied);
  constexpr std::string_view kAllow = "/admin/allowlist";
  constexpr std::string_view kBlock = "/admin/blocklist";
  if (path.starts_with(kAllow)) {
    return list_route(request, ListKind::kAllow, path.substr(kAllow.size()));
  }
  if (path.starts_with(kBlock)) {
    return list_route(request, ListKind::kBlock, path.substr(kBlock.size()));
  }
  return error(404, "not_found", "", fmt::format("no such endpoint: {}", path));
}

Response AdminApi::list_route(const Request& request, ListKind list, std::string_view rest) {
  const std::string_view name = to_string(list);
  const bool get = request.method == "GET" || request.method == "HEAD";
  if (rest.empty() || rest == "/") {
    if (get) {
      const Micros now =
          std::chrono::duration_cast<Micros>(std::chrono::system_clock::now().time_since_epoch());
      const auto entries = lists_.entries(list);
      std::string body = "{\"list\":";
      append_json_string(body, name);
      fmt::format_to(std::back_inserter(body), ",\"count\":{},\"entries\":[", entries.size());
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (i > 0) body += ',';
        body += entry_json(entries[i], now);
      }
      body += "]}";
      return json(200, std::move(body));
    }
    if (request.method != "POST") {
      Response r =
          error(405, "method_not_allowed", "", fmt::format("/admin/{} takes GET or POST", name));
      r.headers.emplace_back("Allow", "GET, HEAD, POST");
      return r;
    }
    auto parsed = parse_new_entry(request.body);
    if (auto* failed = std::get_if<Response>(&parsed)) return std::move(*failed);
    NewEntry entry = std::get<NewEntry>(std::move(parsed));
    entry.added_by = std::string(request.peer_address);
    auto added = lists_.add(list, entry);
    if (auto* refused = std::get_if<AccessLists::AddError>(&added)) {
      return error(refused->status, refused->code, refused->field, refused->message);
    }
    const ListEntry& stored = std::get<ListEntry>(added);
    audit("add", stored, request.peer_address);
    return json(201, entry_json(stored, stored.created));
  }
  // /admin/<list>/<id>
  const std::string_view id = rest.substr(1);
  if (rest.front() != '/' || id.empty() || id.find('/') != std::string_view::npos) {
    return error(404, "not_found", "", fmt::format("no such endpoint: /admin/{}{}", name, rest));
  }
  if (request.method != "DELETE") {
    Response r =
        error(405, "method_not_allowed", "", fmt::format("/admin/{}/<id> takes DELETE", name));
    r.headers.emplace_back("Allow", "DELETE");
    return r;
  }
  const auto removed = lists_.remove(list, id);
  if (!removed) {
    return error(404, "not_found", "id", fmt::format("no entry {} in the {}", id, name));
  }
  audit("remove", *removed, request.peer_address);
  Response r = json(204, "");
  r.content_type = {};
  return r;
}

void AdminApi::audit(std::string_view action, const ListEntry& entry, std::string_view from) const {
  if (!options_.audit) return;
  std::string line = "{\"audit\":\"admin\",\"action\":";
  append_json_string(line, action);
  line += ",\"list\":";
  append_json_string(line, to_string(entry.list));
  line += ",\"id\":";
  append_json_string(line, entry.id);
  if (!entry.value.empty()) {
    line += entry.is_ip ? ",\"ip\":" : ",\"key\":";
    append_json_string(line, entry.value);
  }
  if (entry.expires.count() != 0) {
    line += ",\"expires_at\":";
    append_time(line, entry.expires);
  }
  line += ",\"from\":";
  append_json_string(line, from);
  line += '}';
  options_.audit(line);
}

}  // namespace floodgate::admin
