// File: server/http/check_request.h
//
// The body of POST /v1/check (and the seeds' POST /check and POST /api/v1/ratelimit), decoded
// straight from the bytes by a SAX handler: no DOM, no allocation beyond the key and the strings
// kept, and strict about what it accepts — a flat object of scalars, no duplicate member names
// (so a proxy and floodgate can never read two different values), no unknown fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "floodgate/policy.h"
#include "floodgate/policy_spec.h"

namespace floodgate::http {

inline constexpr std::size_t kMaxKeyBytes = 512;

// ApiError: a 4xx answer: the HTTP status, a stable code, a sentence, and the field (may be empty).
struct ApiError {
  int status = 400;
  std::string code;
  std::string message;
  std::string field;
};

struct CheckRequest {
  std::optional<std::string> key;
  std::optional<std::string> rule;
  std::optional<Number> cost;
  std::optional<std::string> ip;  // the client's address, when the caller knows it
  PolicySpec policy;              // algorithm and parameters, as given
};

// parse_check_request(): decodes `body` or says precisely what is wrong with it.
std::optional<CheckRequest> parse_check_request(std::string_view body, ApiError& error);

// policy_for(): the policy a request asks for, with `defaults` filling what it leaves out.
// Returns nullopt and fills `error` when a parameter is wrong, missing or not the algorithm's.
std::optional<Policy> policy_for(const CheckRequest& request, const PolicyDefaults& defaults,
                                 ApiError& error);

// cost_of(): the request's cost (default 1), or nullopt with `error` filled.
std::optional<std::uint64_t> cost_of(const CheckRequest& request, ApiError& error);

}  // namespace floodgate::http
