// The HTTP API as a function: every route, header and error, without sockets.
#include <map>
#include <string>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rules/loader.h"
#include "server/http/api.h"
#include "testlib/harness.h"

namespace floodgate::http {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class Headers final : public HeaderLookup {
 public:
  std::map<std::string, std::string> values;
  std::string_view get(std::string_view name) const override {
    auto it = values.find(std::string(name));
    return it == values.end() ? std::string_view{} : std::string_view(it->second);
  }
};

std::string header(const Response& r, std::string_view name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

class ApiTest : public ::testing::Test {
 protected:
  ManualClock clock{testing::kStart + 15s};
  MemoryStore store{clock};
  Limiter limiter{store};
  observe::Metrics metrics;
  Api api{limiter, store, metrics, ApiOptions{}};
  Headers headers;

  Response post(std::string_view path, std::string_view body) {
    return api.handle({"POST", path, body, "10.0.0.9", headers});
  }
  Response get(std::string_view path) { return api.handle({"GET", path, "", "10.0.0.9", headers}); }
};

TEST_F(ApiTest, CheckAllowsThenDeniesWithExactHeaders) {
  const std::string body =
      R"({"key":"u1","algorithm":"fixed_window","limit":2,"window":60,"cost":1})";
  Response r = post("/v1/check", body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            R"({"allowed":true,"limit":2,"remaining":1,"reset_after_ms":45000,"retry_after_ms":0,)"
            R"("algorithm":"fixed_window","degraded":false})");
  EXPECT_EQ(header(r, "RateLimit-Policy"), R"("default";q=2;w=60)");
  EXPECT_EQ(header(r, "RateLimit"), R"("default";r=1;t=45)");
  EXPECT_EQ(header(r, "X-RateLimit-Limit"), "2");
  EXPECT_EQ(header(r, "X-RateLimit-Remaining"), "1");
  // The Unix time of the window's end (kStart + 60 s), as GitHub and express-rate-limit send it.
  EXPECT_EQ(header(r, "X-RateLimit-Reset"),
            std::to_string(
                std::chrono::duration_cast<std::chrono::seconds>(testing::kStart + 60s).count()));
  EXPECT_EQ(header(r, "Retry-After"), "<absent>");

  post("/v1/check", body);
  clock.advance(500ms);
  r = post("/v1/check", body);
  EXPECT_EQ(r.status, 429);
  EXPECT_THAT(r.body, HasSubstr(R"("allowed":false)"));
  EXPECT_THAT(r.body, HasSubstr(R"("retry_after_ms":44500)"));
  EXPECT_THAT(r.body, HasSubstr(R"("reason":"limited")"));
  EXPECT_EQ(header(r, "Retry-After"), "45");  // 44.5 s rounded up
}

TEST_F(ApiTest, CostAboveCapacityIsDeniedWithNullRetryAndNoRetryAfter) {
  const Response r =
      post("/v1/check",
           R"({"key":"k","algorithm":"token_bucket","capacity":5,"refill_rate":1,"cost":6})");
  EXPECT_EQ(r.status, 429);
  EXPECT_THAT(r.body, HasSubstr(R"("retry_after_ms":null)"));
  EXPECT_THAT(r.body, HasSubstr(R"("reason":"cost_exceeds_capacity")"));
  EXPECT_EQ(header(r, "Retry-After"), "<absent>");
}

TEST_F(ApiTest, SeedShapesAreAccepted) {
  Response r = post(
      "/check", R"({"key":"user:123","algorithm":"token_bucket","capacity":10,"refill_rate":1})");
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("limit":10,"remaining":9)"));
  r = post("/check", R"({"key":"user123"})");  // the defaults: token_bucket of 1000 per hour
  EXPECT_THAT(r.body, HasSubstr(R"("limit":1000,"remaining":999)"));
  r = post("/api/v1/ratelimit", R"({"algorithm":"sliding_window"})");  // keyed by client address
  EXPECT_EQ(r.status, 200);
  EXPECT_THAT(r.body, HasSubstr(R"("algorithm":"sliding_window_log")"));
  r = post("/v1/check", R"({"key":"k","algorithm":"gcra","limit":10,"window_ms":1000,"burst":2})");
  EXPECT_THAT(r.body, HasSubstr(R"("limit":2,"remaining":1)"));
}

TEST_F(ApiTest, LeakyBucketAnswersCarryTheDelay) {
  const std::string body = R"({"key":"k","algorithm":"leaky_bucket","capacity":3,"leak_rate":2})";
  EXPECT_THAT(post("/v1/check", body).body, HasSubstr(R"("delay_ms":0)"));
  EXPECT_THAT(post("/v1/check", body).body, HasSubstr(R"("delay_ms":500)"));
}

TEST_F(ApiTest, InspectConsumesNothing) {
  const std::string check = R"({"key":"k","algorithm":"fixed_window","limit":3,"window":10})";
  post("/v1/check", check);
  for (int i = 0; i < 3; ++i) {
    const Response r = post("/v1/inspect", check);
    EXPECT_EQ(r.status, 200);
    EXPECT_THAT(r.body, HasSubstr(R"("remaining":2)"));
  }
  EXPECT_EQ(post("/v1/inspect", R"({"key":"k","cost":1})").status, 400);
}

struct BadBody {
  std::string body;
  std::string code;
  std::string field;
};

class ApiBadInputTest : public ApiTest, public ::testing::WithParamInterface<BadBody> {};

TEST_P(ApiBadInputTest, IsA400NamingTheField) {
  const BadBody& bad = GetParam();
  const Response r = post("/v1/check", bad.body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr(R"("code":")" + bad.code + "\""));
  if (bad.field.empty()) {
    EXPECT_THAT(r.body, HasSubstr(R"("field":null)"));
  } else {
    EXPECT_THAT(r.body, HasSubstr(R"("field":")" + bad.field + "\""));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Everything, ApiBadInputTest,
    ::testing::Values(
        BadBody{"", "invalid_json", ""}, BadBody{"{", "invalid_json", ""},
        BadBody{"[1,2]", "invalid_json", ""}, BadBody{"\"key\"", "invalid_json", ""},
        BadBody{R"({"key":"k"} x)", "invalid_json", ""},
        BadBody{R"({"key":"a","key":"b"})", "duplicate_field", "key"},
        BadBody{R"({"key":"a","limit":1,"limit":2})", "duplicate_field", "limit"},
        BadBody{R"({"key":7})", "invalid_type", "key"},
        BadBody{R"({"key":"k","limit":"10"})", "invalid_type", "limit"},
        BadBody{R"({"key":"k","limit":true})", "invalid_type", "limit"},
        BadBody{R"({"key":null})", "invalid_type", "key"},
        BadBody{R"({"key":{"a":1}})", "invalid_type", "key"},
        BadBody{R"({"key":["a"]})", "invalid_type", "key"},
        BadBody{R"({})", "missing_field", "key"},
        BadBody{R"({"key":""})", "invalid_parameter", "key"},
        BadBody{R"({"key":"k","algorithm":"magic"})", "unknown_algorithm", "algorithm"},
        BadBody{R"({"key":"k","rule":"nope"})", "unknown_rule", "rule"},
        BadBody{R"({"key":"k","limt":5})", "unknown_field", "limt"},
        BadBody{R"({"key":"k","algorithm":"token_bucket","capacity":0})", "invalid_parameter",
                "capacity"},
        BadBody{R"({"key":"k","algorithm":"token_bucket","capacity":1.5})", "invalid_parameter",
                "capacity"},
        BadBody{R"({"key":"k","algorithm":"token_bucket","refill_rate":-1})", "invalid_parameter",
                "refill_rate"},
        BadBody{R"({"key":"k","algorithm":"token_bucket","refill_rate":1e400})",
                "invalid_parameter", "refill_rate"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","window":0})", "invalid_parameter",
                "window"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","window":1e300})", "invalid_parameter",
                "window"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","window_ms":0.5})", "invalid_parameter",
                "window_ms"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","window":1,"window_ms":1000})",
                "invalid_parameter", "window_ms"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","limit":4294967296})", "invalid_parameter",
                "limit"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","limit":18446744073709551615})",
                "invalid_parameter", "limit"},
        BadBody{R"({"key":"k","algorithm":"fixed_window","capacity":5})", "invalid_parameter",
                "capacity"},
        BadBody{R"({"key":"k","algorithm":"gcra","refill_rate":5})", "invalid_parameter",
                "refill_rate"},
        BadBody{R"({"key":"k","cost":-1})", "invalid_parameter", "cost"},
        BadBody{R"({"key":"k","cost":0.5})", "invalid_parameter", "cost"},
        BadBody{"{\"key\":\"" + std::string(513, 'x') + "\"}", "key_too_long", "key"}),
    [](const auto& param_info) {
      return std::to_string(param_info.index) + "_" + param_info.param.code;
    });

TEST_F(ApiTest, A512ByteKeyIsFine) {
  EXPECT_EQ(post("/v1/check", "{\"key\":\"" + std::string(512, 'x') + "\"}").status, 200);
}

TEST_F(ApiTest, UnknownPathsAndMethods) {
  EXPECT_EQ(get("/nope").status, 404);
  const Response r = get("/v1/check");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(header(r, "Allow"), "POST");
  EXPECT_EQ(post("/health", "").status, 405);
}

TEST_F(ApiTest, HealthReadyAndMetrics) {
  EXPECT_EQ(get("/health").body, R"({"status":"ok"})");
  EXPECT_EQ(get("/ready").body, R"({"status":"ready","store":"memory","state":"ok"})");
  EXPECT_EQ(get("/healthcheck").body, "OK");  // envoyproxy/ratelimit's probe path
  post("/v1/check", R"({"key":"k","algorithm":"fixed_window","limit":1,"window":1})");
  post("/v1/check", R"({"key":"k","algorithm":"fixed_window","limit":1,"window":1})");
  const Response m = get("/metrics?x=1");
  EXPECT_EQ(m.status, 200);
  EXPECT_THAT(std::string(m.content_type), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(
      m.body,
      HasSubstr(R"(floodgate_decisions_total{algorithm="fixed_window",outcome="allowed"} 1)"));
  EXPECT_THAT(
      m.body,
      HasSubstr(R"(floodgate_decisions_total{algorithm="fixed_window",outcome="denied"} 1)"));
  EXPECT_THAT(m.body, HasSubstr(R"(floodgate_http_requests_total{code="429"} 1)"));
  EXPECT_THAT(m.body, HasSubstr("floodgate_check_duration_seconds_count 2"));
  EXPECT_THAT(m.body, HasSubstr("floodgate_keys 1"));
}

TEST_F(ApiTest, AuthKeysByApiKeyOrClientAddressAndAnswers204Then403) {
  headers.values["X-Forwarded-For"] = "203.0.113.7, 10.0.0.1";
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(get("/v1/auth").status, 204);
  }
  const Response denied = get("/v1/auth");
  EXPECT_EQ(denied.status, 403);
  EXPECT_TRUE(denied.body.empty());
  EXPECT_EQ(header(denied, "X-RateLimit-Remaining"), "0");
  EXPECT_NE(header(denied, "Retry-After"), "<absent>");

  headers.values["X-API-Key"] = "team-a";  // another key: its own budget
  EXPECT_EQ(get("/v1/auth").status, 204);
  headers.values.erase("X-API-Key");
  headers.values["X-Real-IP"] = "198.51.100.1";  // X-Real-IP wins over X-Forwarded-For
  EXPECT_EQ(get("/v1/auth").status, 204);
}

}  // namespace
}  // namespace floodgate::http

namespace floodgate::http {
namespace {

class ApiRulesTest : public ApiTest {
 protected:
  rules::RuleStore store_of_rules;
  Api with_rules{
      limiter, store, metrics,
      ApiOptions{.defaults = {}, .rules = &store_of_rules, .api_key_header = "X-API-Key"}};

  void SetUp() override {
    auto loaded = rules::load_rules(FLOODGATE_SOURCE_DIR "/examples/rules.yaml", PolicyDefaults{});
    ASSERT_TRUE(std::holds_alternative<rules::RuleSet>(loaded));
    auto& set = std::get<rules::RuleSet>(loaded);
    for (auto& [name, rule] : set.rules) rule.metrics_slot = metrics.rule_slot(name);
    store_of_rules.replace(std::make_shared<const rules::RuleSet>(std::move(set)));
  }
  Response post_rule(std::string_view body) {
    return with_rules.handle({"POST", "/v1/check", body, "10.0.0.9", headers});
  }
};

TEST_F(ApiRulesTest, ANamedRuleDecides) {
  for (int i = 0; i < 5; ++i) EXPECT_EQ(post_rule(R"({"rule":"login","key":"alice"})").status, 200);
  const Response r = post_rule(R"({"rule":"login","key":"alice"})");
  EXPECT_EQ(r.status, 429);
  EXPECT_THAT(r.body, HasSubstr(R"("algorithm":"sliding_window_log")"));
  // The same key under an inline policy is another budget.
  EXPECT_EQ(
      post(R"(/v1/check)", R"({"key":"alice","algorithm":"sliding_window_log","limit":5})").status,
      200);
}

TEST_F(ApiRulesTest, MetricsCountDecisionsByRule) {
  for (int i = 0; i < 6; ++i) post_rule(R"({"rule":"login","key":"dave"})");
  const std::string text = get("/metrics").body;
  EXPECT_THAT(text,
              HasSubstr(R"(floodgate_rule_decisions_total{rule="login",outcome="allowed"} 5)"));
  EXPECT_THAT(text,
              HasSubstr(R"(floodgate_rule_decisions_total{rule="login",outcome="denied"} 1)"));
  EXPECT_THAT(text, HasSubstr(R"(floodgate_rule_decisions_total{rule="api",outcome="allowed"} 0)"));
}

TEST_F(ApiRulesTest, TiersComeFromAHeaderOrTheKeyPrefix) {
  headers.values["X-Plan"] = "pro";
  EXPECT_THAT(post_rule(R"({"rule":"api","key":"bob"})").body, HasSubstr(R"("limit":100)"));
  headers.values["X-Plan"] = "unknown-plan";  // the default tier
  EXPECT_THAT(post_rule(R"({"rule":"api","key":"bob"})").body, HasSubstr(R"("limit":10)"));
  EXPECT_THAT(post_rule(R"({"rule":"search","key":"pro:carol"})").body,
              HasSubstr(R"("limit":100)"));  // gcra: limit in a decision is the burst
}

TEST_F(ApiRulesTest, RuleErrors) {
  Response r = post_rule(R"({"rule":"nope","key":"k"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("unknown_rule"));
  r = post_rule(R"({"rule":"login","key":"k","limit":9})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr(R"("field":"rule")"));
}

TEST_F(ApiRulesTest, AuthUsesTheAuthRuleAndItsKeyParts) {
  headers.values["X-Real-IP"] = "192.0.2.5";
  headers.values["X-Original-URI"] = "/login?next=/home";
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(with_rules.handle({"GET", "/v1/auth", "", "10.0.0.9", headers}).status, 204);
  }
  EXPECT_EQ(with_rules.handle({"GET", "/v1/auth", "", "10.0.0.9", headers}).status, 403);
  headers.values["X-Original-URI"] = "/other";  // another URI: another key
  EXPECT_EQ(with_rules.handle({"GET", "/v1/auth", "", "10.0.0.9", headers}).status, 204);
}

// Per endpoint: the proxy names the rule (/v1/auth?rule=NAME, one nginx location each), or
// auth.routes pick it by the original request's path and method.
TEST_F(ApiTest, AuthPicksTheRuleByQueryOrByRoute) {
  auto loaded = rules::load_rules_text(R"(
rules:
  login: {algorithm: fixed_window, limit: 1, window: 60}
  writes: {algorithm: fixed_window, limit: 2, window: 60}
  everything: {algorithm: fixed_window, limit: 3, window: 60}
auth:
  rule: everything
  routes:
    - {path: /login, rule: login}
    - {path: /api/data, method: POST, rule: writes}
)",
                                       "routes.yaml", PolicyDefaults{});
  ASSERT_TRUE(std::holds_alternative<rules::RuleSet>(loaded));
  rules::RuleStore rule_store;
  rule_store.replace(std::make_shared<const rules::RuleSet>(std::get<rules::RuleSet>(loaded)));
  Api routed{limiter, store, metrics,
             ApiOptions{.defaults = {}, .rules = &rule_store, .api_key_header = "X-API-Key"}};
  auto auth = [&](std::string_view target, std::string_view uri, std::string_view method) {
    Headers h;
    h.values["X-Real-IP"] = "192.0.2.7";
    h.values["X-Original-URI"] = std::string(uri);
    h.values["X-Original-Method"] = std::string(method);
    return routed.handle({"GET", target, "", "10.0.0.1", h});
  };
  auto limit_of = [](const Response& r) { return header(r, "X-RateLimit-Limit"); };
  EXPECT_EQ(limit_of(auth("/v1/auth", "/login?next=/", "POST")), "1");
  EXPECT_EQ(limit_of(auth("/v1/auth", "/api/data/3", "POST")), "2");
  EXPECT_EQ(limit_of(auth("/v1/auth", "/api/data/3", "GET")), "3");
  EXPECT_EQ(limit_of(auth("/v1/auth", "/", "GET")), "3");
  // The query wins over the routes, percent-decoded.
  EXPECT_EQ(limit_of(auth("/v1/auth?rule=writes", "/login", "GET")), "2");
  EXPECT_EQ(limit_of(auth("/v1/auth?x=1&rule=w%72ites", "/login", "GET")), "2");
  // /login's budget (1) is its own: the second is denied, the other routes are not.
  EXPECT_EQ(auth("/v1/auth", "/login", "GET").status, 403);
  EXPECT_EQ(auth("/v1/auth", "/elsewhere", "GET").status, 204);
  const Response unknown = auth("/v1/auth?rule=nope", "/", "GET");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr(R"("code":"unknown_rule")"));
  EXPECT_THAT(unknown.body, HasSubstr(R"("field":"rule")"));
  // Without a rules file, a named rule is unknown too.
  EXPECT_EQ(get("/v1/auth?rule=login").status, 400);
}

// An auth rule keyed by API key: each key has its budget, and requests without one are limited
// per client address (a missing key does not put every anonymous client on one budget).
TEST_F(ApiTest, AuthRuleByApiKeyLimitsRequestsWithoutOnePerAddress) {
  auto loaded = rules::load_rules_text(R"(
rules:
  per_key:
    algorithm: fixed_window
    limit: 2
    window: 60
    key: [api_key, header:X-Tenant]
auth:
  rule: per_key
)",
                                       "auth-rules.yaml", PolicyDefaults{});
  ASSERT_TRUE(std::holds_alternative<rules::RuleSet>(loaded));
  rules::RuleStore rule_store;
  rule_store.replace(std::make_shared<const rules::RuleSet>(std::get<rules::RuleSet>(loaded)));
  Api keyed{limiter, store, metrics,
            ApiOptions{.defaults = {}, .rules = &rule_store, .api_key_header = "X-API-Key"}};
  auto auth = [&](std::string_view address, std::string_view key) {
    Headers h;
    if (!key.empty()) h.values["X-API-Key"] = std::string(key);
    h.values["X-Tenant"] = "acme";
    return keyed.handle({"GET", "/v1/auth", "", address, h}).status;
  };
  EXPECT_EQ(auth("10.0.0.1", ""), 204);
  EXPECT_EQ(auth("10.0.0.1", ""), 204);
  EXPECT_EQ(auth("10.0.0.1", ""), 403);
  EXPECT_EQ(auth("10.0.0.2", ""), 204);  // another anonymous client: its own budget
  EXPECT_EQ(auth("10.0.0.1", "k1"), 204);
  EXPECT_EQ(auth("10.0.0.2", "k1"), 204);  // one API key, one budget, whatever the address
  EXPECT_EQ(auth("10.0.0.3", "k1"), 403);
}

}  // namespace
}  // namespace floodgate::http
