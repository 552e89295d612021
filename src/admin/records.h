// File: admin/records.h
//
// The admin side's JSON: how list entries and overrides are shown by the admin API, and how they
// are kept in a shared store as records (one JSON object each, times in Unix microseconds) that
// any instance reads back into the same entry.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/value.hpp>

#include "admin/access_lists.h"
#include "admin/overrides.h"
#include "floodgate/policy_spec.h"

namespace floodgate::admin {

// append_time(): `t` (wall time) as a quoted RFC 3339 UTC timestamp with milliseconds.
void append_time(std::string& out, Micros t);

// entry_json(), override_json(): as the admin API shows them; `now` gives expires_in_s.
std::string entry_json(const ListEntry& entry, Micros now);
std::string override_json(const Override& o, Micros now);

// record(): the stored form.
std::string record(const ListEntry& entry);
std::string record(const Override& o);

// parse_record(): a stored record back; nullopt when it is not one (a record from a newer
// version, a damaged one). Overrides still need Overrides::build() for their policy.
std::optional<std::variant<ListEntry, Override>> parse_record(std::string_view json);

// read_policy_field(): when `name` is an algorithm or parameter field of a policy, reads `value`
// into `spec` and returns true; `error` is set when the value has the wrong type.
bool read_policy_field(std::string_view name, const boost::json::value& value, PolicySpec& spec,
                       std::string& error);

// append_policy_fields(): the fields of `spec` that were given, as JSON members (",\"name\":v").
void append_policy_fields(std::string& out, const PolicySpec& spec);

}  // namespace floodgate::admin
