// File: server/http/target.h
//
// The parts of a request target ("/v1/auth?rule=login") the routes read: its path, and a query
// parameter percent-decoded (Boost.URL).
//
// Example:
//   path_of("/admin/stats?scope=cluster")              // "/admin/stats"
//   query_param("/v1/auth?rule=log%69n", "rule")       // "login"
//   query_param("/v1/auth", "rule")                    // nullopt
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace floodgate::http {

// path_of(): the target without its query.
std::string_view path_of(std::string_view target);

// query_param(): the first `name` parameter of the target's query, percent-decoded ('+' stays
// '+'); "" for "?name" or "?name="; nullopt when absent or when the target is not a valid
// origin-form target.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

}  // namespace floodgate::http
