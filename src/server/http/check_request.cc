#include "server/http/check_request.h"

#include <array>
#include <cmath>
#include <string>

#include <boost/json/basic_parser_impl.hpp>

namespace floodgate::http {
namespace {

namespace json = boost::json;
using boost::system::error_code;

enum class Field : std::uint8_t {
  kKey,
  kRule,
  kAlgorithm,
  kCost,
  kLimit,
  kCapacity,
  kBurst,
  kRefillRate,
  kLeakRate,
  kWindow,
  kWindowMs,
  kIp,
  kCount,
};

constexpr std::array<std::string_view, static_cast<std::size_t>(Field::kCount)> kFieldNames = {
    "key",   "rule",        "algorithm", "cost",   "limit",     "capacity",
    "burst", "refill_rate", "leak_rate", "window", "window_ms", "ip",
};

bool is_string_field(Field f) {
  return f == Field::kKey || f == Field::kRule || f == Field::kAlgorithm || f == Field::kIp;
}

ApiError bad_request(std::string code, std::string message, std::string_view field = {}) {
  return ApiError{400, std::move(code), std::move(message), std::string(field)};
}

// Handler for boost::json::basic_parser: accepts one flat object of known scalar fields.
class CheckHandler {
 public:
  static constexpr std::size_t max_object_size = 64;
  static constexpr std::size_t max_array_size = 0;
  static constexpr std::size_t max_key_size = 64;
  static constexpr std::size_t max_string_size = 4096;

  CheckRequest request;
  std::optional<ApiError> error;

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code& ec) {
    if (++depth_ == 1) return true;
    return fail(ec, bad_request("invalid_type", "must be a string or a number, not an object",
                                field_name()));
  }
  bool on_object_end(std::size_t, error_code&) {
    --depth_;
    return true;
  }
  bool on_array_begin(error_code& ec) {
    if (depth_ == 0) return fail(ec, not_an_object());
    return fail(ec, bad_request("invalid_type", "must be a string or a number, not an array",
                                field_name()));
  }
  bool on_array_end(std::size_t, error_code&) { return true; }

  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code& ec) {
    text_.append(s.data(), s.size());
    field_.reset();
    for (std::size_t i = 0; i < kFieldNames.size(); ++i) {
      if (kFieldNames[i] == text_) field_ = static_cast<Field>(i);
    }
    if (!field_) {
      return fail(ec, bad_request("unknown_field", "is not a field of a check request", text_));
    }
    const auto bit = std::uint32_t{1} << static_cast<unsigned>(*field_);
    if (seen_ & bit) {
      return fail(ec, bad_request("duplicate_field", "appears more than once", text_));
    }
    seen_ |= bit;
    text_.clear();
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, error_code& ec) {
    if (!scalar_allowed(ec)) return false;
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code& ec) {
    if (!scalar_allowed(ec)) return false;
    text_.append(s.data(), s.size());
    if (!is_string_field(*field_)) {
      return fail(ec, bad_request("invalid_type", "must be a number, not a string", field_name()));
    }
    if (*field_ == Field::kKey && text_.size() > kMaxKeyBytes) {
      return fail(ec, bad_request("key_too_long",
                                  "must be at most " + std::to_string(kMaxKeyBytes) +
                                      " bytes, got " + std::to_string(text_.size()),
                                  "key"));
    }
    string_slot(*field_) = std::move(text_);
    text_.clear();
    return true;
  }

  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, error_code& ec) {
    return number(ec, Number{true, i, static_cast<double>(i)});
  }
  bool on_uint64(std::uint64_t u, json::string_view, error_code& ec) {
    // Beyond int64: far beyond every range we accept; keep it as a double for the message.
    return number(ec, Number{false, 0, static_cast<double>(u)});
  }
  bool on_double(double d, json::string_view, error_code& ec) {
    return number(ec, Number{false, 0, d});
  }
  bool on_bool(bool, error_code& ec) {
    if (!scalar_allowed(ec)) return false;
    return fail(
        ec, bad_request("invalid_type", std::string("must be a ") + expected() + ", not a boolean",
                        field_name()));
  }
  bool on_null(error_code& ec) {
    if (!scalar_allowed(ec)) return false;
    return fail(ec,
                bad_request("invalid_type", std::string("must be a ") + expected() + ", not null",
                            field_name()));
  }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  static ApiError not_an_object() {
    return bad_request("invalid_json", "the body must be a JSON object");
  }

  std::string_view field_name() const {
    return field_ ? kFieldNames[static_cast<std::size_t>(*field_)] : std::string_view{};
  }
  const char* expected() const { return field_ && is_string_field(*field_) ? "string" : "number"; }

  bool fail(error_code& ec, ApiError e) {
    if (!error) error = std::move(e);
    ec = make_error_code(boost::system::errc::invalid_argument);
    return false;
  }

  bool scalar_allowed(error_code& ec) {
    if (depth_ == 0) return fail(ec, not_an_object());
    return true;
  }

  bool number(error_code& ec, Number n) {
    if (!scalar_allowed(ec)) return false;
    if (is_string_field(*field_)) {
      return fail(ec, bad_request("invalid_type", "must be a string, not a number", field_name()));
    }
    number_slot(*field_) = n;
    return true;
  }

  std::optional<std::string>& string_slot(Field f) {
    switch (f) {
      case Field::kKey:
        return request.key;
      case Field::kRule:
        return request.rule;
      case Field::kAlgorithm:
        return request.policy.algorithm;
      default:
        return request.ip;
    }
  }

  std::optional<Number>& number_slot(Field f) {
    PolicySpec& p = request.policy;
    switch (f) {
      case Field::kCost:
        return request.cost;
      case Field::kLimit:
        return p.limit;
      case Field::kCapacity:
        return p.capacity;
      case Field::kBurst:
        return p.burst;
      case Field::kRefillRate:
        return p.refill_rate;
      case Field::kLeakRate:
        return p.leak_rate;
      case Field::kWindow:
        return p.window;
      default:
        return p.window_ms;
    }
  }

  int depth_ = 0;
  std::uint32_t seen_ = 0;
  std::optional<Field> field_;
  std::string text_;
};

}  // namespace

std::optional<CheckRequest> parse_check_request(std::string_view body, ApiError& error) {
  json::parse_options options;
  options.max_depth = 4;
  json::basic_parser<CheckHandler> parser(options);
  error_code ec;
  std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  // One value and nothing after it but white space.
  while (!ec && used < body.size()) {
    const char c = body[used++];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      error = bad_request("invalid_json", "the body holds more than one JSON value");
      return std::nullopt;
    }
  }
  if (parser.handler().error) {
    error = std::move(*parser.handler().error);
    return std::nullopt;
  }
  if (ec) {
    error = bad_request("invalid_json", "the body is not valid JSON: " + ec.message());
    return std::nullopt;
  }
  return std::move(parser.handler().request);
}

std::optional<std::uint64_t> cost_of(const CheckRequest& request, ApiError& error) {
  if (!request.cost) return 1;
  const std::optional<std::int64_t> cost = request.cost->as_integer();
  if (!cost) {
    error = bad_request("invalid_parameter", "must be an integer", "cost");
    return std::nullopt;
  }
  if (*cost < 0 || static_cast<std::uint64_t>(*cost) > kMaxLimit) {
    error = bad_request("invalid_parameter",
                        "must be an integer from 0 to 4294967295, got " + std::to_string(*cost),
                        "cost");
    return std::nullopt;
  }
  return static_cast<std::uint64_t>(*cost);
}

std::optional<Policy> policy_for(const CheckRequest& r, const PolicyDefaults& defaults,
                                 ApiError& error) {
  auto policy = build_policy(r.policy, defaults);
  if (!policy) {
    const bool algorithm = policy.error().field == "algorithm";
    error = bad_request(algorithm ? "unknown_algorithm" : "invalid_parameter",
                        policy.error().message, policy.error().field);
    return std::nullopt;
  }
  return *policy;
}

}  // namespace floodgate::http
