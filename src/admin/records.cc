#include "admin/records.h"

#include <ctime>

#include <fmt/format.h>
#include <boost/json/parse.hpp>

#include "core/json_text.h"

namespace floodgate::admin {
namespace {

using core::append_json_string;

void append_number(std::string& out, const Number& n) {
  if (n.is_integer) {
    fmt::format_to(std::back_inserter(out), "{}", n.integer);
  } else {
    fmt::format_to(std::back_inserter(out), "{}", n.real);
  }
}

void append_expiry(std::string& out, Micros expires, Micros now) {
  out += ",\"expires_at\":";
  if (expires.count() == 0) {
    out += "null,\"expires_in_s\":null";
    return;
  }
  append_time(out, expires);
  fmt::format_to(std::back_inserter(out), ",\"expires_in_s\":{:.3f}",
                 static_cast<double>(std::max<std::int64_t>(0, (expires - now).count())) / 1e6);
}

std::optional<std::string> string_at(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->as_string());
}

std::int64_t int_at(const boost::json::object& o, std::string_view name) {
  const auto* v = o.if_contains(name);
  return v != nullptr && v->is_int64() ? v->as_int64() : 0;
}

}  // namespace

void append_time(std::string& out, Micros t) {
  const std::time_t seconds = static_cast<std::time_t>(t.count() / 1'000'000);
  std::tm tm{};
  ::gmtime_r(&seconds, &tm);
  fmt::format_to(std::back_inserter(out), "\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (t.count() / 1000) % 1000);
}

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
  append_expiry(out, e.expires, now);
  out += '}';
  return out;
}

void append_policy_fields(std::string& out, const PolicySpec& spec) {
  if (spec.algorithm) {
    out += ",\"algorithm\":";
    append_json_string(out, *spec.algorithm);
  }
  const std::pair<const char*, const std::optional<Number>*> fields[] = {
      {"limit", &spec.limit},         {"capacity", &spec.capacity},
      {"burst", &spec.burst},         {"refill_rate", &spec.refill_rate},
      {"leak_rate", &spec.leak_rate}, {"window", &spec.window},
      {"window_ms", &spec.window_ms}};
  for (const auto& [name, value] : fields) {
    if (!value->has_value()) continue;
    fmt::format_to(std::back_inserter(out), ",\"{}\":", name);
    append_number(out, **value);
  }
}

bool read_policy_field(std::string_view name, const boost::json::value& value, PolicySpec& spec,
                       std::string& error) {
  if (name == "algorithm") {
    if (!value.is_string()) {
      error = "must be a string";
    } else {
      spec.algorithm = std::string(value.as_string());
    }
    return true;
  }
  std::optional<Number>* field = name == "limit"         ? &spec.limit
                                 : name == "capacity"    ? &spec.capacity
                                 : name == "burst"       ? &spec.burst
                                 : name == "refill_rate" ? &spec.refill_rate
                                 : name == "leak_rate"   ? &spec.leak_rate
                                 : name == "window"      ? &spec.window
                                 : name == "window_ms"   ? &spec.window_ms
                                                         : nullptr;
  if (field == nullptr) return false;
  if (value.is_int64()) {
    *field = Number::of(value.as_int64());
  } else if (value.is_uint64()) {
    error = "is too large";
  } else if (value.is_double()) {
    *field = Number::of_real(value.as_double());
  } else {
    error = "must be a number";
  }
  return true;
}

std::string override_json(const Override& o, Micros now) {
  std::string out = "{\"id\":";
  append_json_string(out, o.id);
  out += o.prefix ? ",\"key_prefix\":" : ",\"key\":";
  append_json_string(out, o.key);
  out += ",\"rule\":";
  if (o.rule.empty()) {
    out += "null";
  } else {
    append_json_string(out, o.rule);
  }
  append_policy_fields(out, o.spec);
  if (!o.spec.limit) fmt::format_to(std::back_inserter(out), ",\"limit\":{}", o.policy.limit());
  out += ",\"added_by\":";
  append_json_string(out, o.added_by);
  out += ",\"created_at\":";
  append_time(out, o.created);
  append_expiry(out, o.expires, now);
  out += '}';
  return out;
}

std::string record(const ListEntry& e) {
  std::string out = "{\"kind\":";
  append_json_string(out, to_string(e.list));
  out += ",\"id\":";
  append_json_string(out, e.id);
  out += e.is_ip ? ",\"ip\":" : ",\"key\":";
  append_json_string(out, e.value);
  out += ",\"note\":";
  append_json_string(out, e.note);
  out += ",\"added_by\":";
  append_json_string(out, e.added_by);
  fmt::format_to(std::back_inserter(out), ",\"created_us\":{},\"expires_us\":{}}}",
                 e.created.count(), e.expires.count());
  return out;
}

std::string record(const Override& o) {
  std::string out = "{\"kind\":\"override\",\"id\":";
  append_json_string(out, o.id);
  out += o.prefix ? ",\"key_prefix\":" : ",\"key\":";
  append_json_string(out, o.key);
  out += ",\"rule\":";
  append_json_string(out, o.rule);
  append_policy_fields(out, o.spec);
  out += ",\"added_by\":";
  append_json_string(out, o.added_by);
  fmt::format_to(std::back_inserter(out), ",\"created_us\":{},\"expires_us\":{}}}",
                 o.created.count(), o.expires.count());
  return out;
}

std::optional<std::variant<ListEntry, Override>> parse_record(std::string_view json) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const boost::json::object& o = v.as_object();
  const auto kind = string_at(o, "kind");
  const auto id = string_at(o, "id");
  if (!kind || !id) return std::nullopt;
  const Micros created{int_at(o, "created_us")};
  const Micros expires{int_at(o, "expires_us")};
  const std::string added_by = string_at(o, "added_by").value_or("");
  if (*kind == "allowlist" || *kind == "blocklist") {
    ListEntry e;
    e.id = *id;
    e.list = *kind == "allowlist" ? ListKind::kAllow : ListKind::kBlock;
    const auto ip = string_at(o, "ip");
    const auto key = string_at(o, "key");
    if (ip.has_value() == key.has_value()) return std::nullopt;
    e.is_ip = ip.has_value();
    e.value = ip ? *ip : *key;
    if (e.is_ip && !parse_cidr(e.value, nullptr)) return std::nullopt;
    e.note = string_at(o, "note").value_or("");
    e.added_by = added_by;
    e.created = created;
    e.expires = expires;
    return e;
  }
  if (*kind != "override") return std::nullopt;
  Override r;
  r.id = *id;
  const auto key = string_at(o, "key");
  const auto prefix = string_at(o, "key_prefix");
  if (key.has_value() == prefix.has_value()) return std::nullopt;
  r.prefix = prefix.has_value();
  r.key = prefix ? *prefix : *key;
  r.rule = string_at(o, "rule").value_or("");
  for (const auto& [name, value] : o) {
    std::string error;
    if (read_policy_field(name, value, r.spec, error) && !error.empty()) return std::nullopt;
  }
  r.added_by = added_by;
  r.created = created;
  r.expires = expires;
  return r;
}

}  // namespace floodgate::admin
