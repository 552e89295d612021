#include <fstream>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rules/loader.h"

namespace floodgate::rules {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

RuleSet good(const std::string& text) {
  auto loaded = load_rules_text(text, "rules.yaml", PolicyDefaults{});
  if (auto* errors = std::get_if<LoadErrors>(&loaded)) {
    ADD_FAILURE() << errors->messages.front();
    return {};
  }
  return std::get<RuleSet>(loaded);
}

std::vector<std::string> errors(const std::string& text) {
  auto loaded = load_rules_text(text, "rules.yaml", PolicyDefaults{});
  if (auto* e = std::get_if<LoadErrors>(&loaded)) return e->messages;
  return {};
}

TEST(RulesLoader, LoadsTheExampleFile) {
  auto loaded = load_rules(FLOODGATE_SOURCE_DIR "/examples/rules.yaml", PolicyDefaults{});
  ASSERT_TRUE(std::holds_alternative<RuleSet>(loaded)) << std::get<LoadErrors>(loaded).messages[0];
  const RuleSet& set = std::get<RuleSet>(loaded);
  ASSERT_EQ(set.rules.size(), 3u);
  const Rule& login = set.rules.at("login");
  EXPECT_EQ(login.policy, Policy::sliding_window_log(5, std::chrono::seconds(60)).value());
  EXPECT_EQ(login.failure_mode, FailureMode::kFailClosed);
  ASSERT_EQ(login.key.size(), 2u);
  EXPECT_EQ(login.key[1].kind, KeyPart::Kind::kUri);
  EXPECT_EQ(set.auth_rule, "login");
  const Rule& api = set.rules.at("api");
  ASSERT_TRUE(api.tiers);
  EXPECT_EQ(api.tiers->header, "X-Plan");
  EXPECT_EQ(api.tiers->policies.at("pro"), Policy::token_bucket(100, 10).value());
  // A tier inherits what it does not say: search's pro tier keeps gcra's 60 s window.
  EXPECT_EQ(set.rules.at("search").tiers->policies.at("pro"),
            Policy::gcra(600, std::chrono::seconds(60), 100).value());
}

TEST(RulesLoader, TiersResolveByHeaderOrKeyPrefix) {
  const RuleSet set = good(R"(
rules:
  a:
    algorithm: fixed_window
    limit: 1
    window: 1
    tiers: {by: "header:X-Plan", default: free, free: {limit: 5}, pro: {limit: 50}}
  b:
    algorithm: fixed_window
    limit: 1
    window: 1
    tiers: {by: key_prefix, pro: {limit: 50}}
)");
  auto header = [](std::string_view plan) {
    return [plan](std::string_view name) { return name == "X-Plan" ? plan : std::string_view{}; };
  };
  EXPECT_EQ(set.rules.at("a").resolve("k", header("pro")).policy->limit(), 50u);
  EXPECT_EQ(set.rules.at("a").resolve("k", header("gold")).policy->limit(), 5u);  // default tier
  EXPECT_EQ(set.rules.at("b").resolve("pro:alice", header("")).policy->limit(), 50u);
  EXPECT_EQ(set.rules.at("b").resolve("alice", header("")).policy->limit(), 1u);  // rule's own
}

TEST(RulesLoader, ErrorsNameTheFileLineColumnAndField) {
  EXPECT_THAT(errors("rules:\n  login:\n    algorithm: fixed_window\n    limit: 0\n"),
              ElementsAre("rules.yaml:4:12: rules.login.limit: must be at least 1, got 0"));
  EXPECT_THAT(errors("rules:\n  x:\n    algorithm: magic\n"),
              ElementsAre(HasSubstr("rules.yaml:3:16: rules.x.algorithm: must be one of")));
  EXPECT_THAT(errors("rules:\n  x:\n    limt: 5\n"),
              ElementsAre("rules.yaml:3:5: rules.x.limt: is not a known field"));
  EXPECT_THAT(errors("rules:\n  x: {capacity: 5}\n  x: {capacity: 6}\n"),
              ElementsAre(HasSubstr("rules.yaml:3:3: rules.x: appears more than once")));
  EXPECT_THAT(errors("rules:\n  x: {algorithm: fixed_window, limit: five}\n"),
              ElementsAre(HasSubstr("rules.x.limit: must be a number, got 'five'")));
  EXPECT_THAT(
      errors("rules:\n  x: {failure_mode: maybe}\n"),
      ElementsAre(HasSubstr("rules.x.failure_mode: must be fail_open, fail_closed or local")));
  EXPECT_THAT(errors("rules:\n  x: {tiers: {pro: {capacity: 5}}}\n"),
              ElementsAre(HasSubstr("rules.x.tiers.by: is required")));
  EXPECT_THAT(errors("auth:\n  rule: nope\n"),
              ElementsAre(HasSubstr("auth.rule: names no rule in this file: 'nope'")));
  EXPECT_THAT(errors("rules: [1, 2\n"), ElementsAre(HasSubstr("rules.yaml:2:1: ")));
  EXPECT_THAT(errors("- just\n- a list\n"),
              ElementsAre(HasSubstr("the file must be a mapping with a 'rules' section")));
}

// auth.routes: the rule GET /v1/auth applies by the original request's path and method; the most
// specific route first, on path segment boundaries, auth.rule when none matches.
TEST(RulesLoader, AuthRoutesPickTheRuleByPathAndMethod) {
  const RuleSet set = good(R"(
auth:                      # before the rules it names: fine
  rule: public
  routes:
    - {path: /api, rule: api}
    - {path: /api/data, method: post, rule: writes}
    - {path: /api/data, rule: api_data}
    - {path: /login/, rule: login}
rules:
  public: {capacity: 10}
  api: {capacity: 20}
  api_data: {capacity: 30}
  writes: {capacity: 40}
  login: {capacity: 50}
)");
  ASSERT_EQ(set.auth_routes.size(), 4u);
  EXPECT_EQ(set.auth_routes[0].path, "/api/data");
  EXPECT_EQ(set.auth_routes[0].method, "POST");  // upper-cased; a method's route before the other
  auto rule_of = [&](std::string_view path, std::string_view method) {
    const Rule* r = set.auth_rule_for(path, method);
    return r ? r->name : std::string("(none)");
  };
  EXPECT_EQ(rule_of("/api/data", "POST"), "writes");
  EXPECT_EQ(rule_of("/api/data/7", "POST"), "writes");
  EXPECT_EQ(rule_of("/api/data", "GET"), "api_data");
  EXPECT_EQ(rule_of("/api/data", ""), "api_data");     // no X-Original-Method: any-method routes
  EXPECT_EQ(rule_of("/api/database", "POST"), "api");  // not under /api/data/
  EXPECT_EQ(rule_of("/api", "GET"), "api");
  EXPECT_EQ(rule_of("/apix", "GET"), "public");
  EXPECT_EQ(rule_of("/login/", "GET"), "login");
  EXPECT_EQ(rule_of("/login/form", "GET"), "login");
  EXPECT_EQ(rule_of("/login", "GET"), "public");  // the route says /login/
  EXPECT_EQ(rule_of("", "GET"), "public");

  const RuleSet no_default =
      good("rules:\n  a: {capacity: 1}\nauth:\n  routes: [{path: /, rule: a}]\n");
  EXPECT_EQ(no_default.auth_rule_for("/anything", "GET")->name, "a");
  const RuleSet none = good("rules:\n  a: {capacity: 1}\nauth:\n  routes: [{path: /x, rule: a}]\n");
  EXPECT_EQ(none.auth_rule_for("/y", "GET"), nullptr);
}

TEST(RulesLoader, AuthRouteErrorsNameTheRoute) {
  const std::string rules = "rules:\n  a: {capacity: 1}\n";
  EXPECT_THAT(errors(rules + "auth:\n  routes: {path: /x}\n"),
              ElementsAre(HasSubstr("rules.yaml:4:11: auth.routes: must be a list")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: x, rule: a}\n"),
              ElementsAre(HasSubstr("auth.routes[0].path: must be a path starting with '/'")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: '/x?y=1', rule: a}\n"),
              ElementsAre(HasSubstr("auth.routes[0].path: must be a path starting with '/'")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: /x, rule: b}\n"),
              ElementsAre("rules.yaml:5:24: auth.routes[0].rule: names no rule in this file: 'b'"));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: /x, method: 'GET /', rule: a}\n"),
              ElementsAre(HasSubstr("auth.routes[0].method: must be an HTTP method")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: /x}\n"),
              ElementsAre(HasSubstr("auth.routes[0].rule: is required")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - {path: /x, rule: a, limit: 3}\n"),
              ElementsAre(HasSubstr("auth.routes[0].limit: is not a known field")));
  EXPECT_THAT(
      errors(rules + "auth:\n  routes:\n    - {path: /x, rule: a}\n    - {path: /x, rule: a}\n"),
      ElementsAre(HasSubstr("auth.routes[1]: another route has the same path and method")));
  EXPECT_THAT(errors(rules + "auth:\n  routes:\n    - /x\n"),
              ElementsAre(HasSubstr("auth.routes[0]: must be a mapping")));
}

TEST(RulesLoader, ReportsEveryErrorNotJustTheFirst) {
  EXPECT_EQ(errors("rules:\n  a: {limit: 0}\n  b: {capacity: -1}\n  c: {bogus: 1}\n").size(), 3u);
}

TEST(RulesLoader, EnvoyConfigsAreToldApartByContent) {
  EXPECT_TRUE(is_envoy_config("domain: mongo_cps\ndescriptors: []\n"));
  EXPECT_TRUE(is_envoy_config("descriptors:\n"));  // a bad one: its domain is missing
  EXPECT_FALSE(is_envoy_config("rules: {}\n"));
  EXPECT_FALSE(is_envoy_config("{{{ not yaml"));
}

TEST(RuleStore, ReadersSeeAReplacement) {
  RuleStore store;
  EXPECT_TRUE(store.current().rules.empty());
  auto next = std::make_shared<RuleSet>(good("rules:\n  a: {limit: 3, algorithm: fixed_window}\n"));
  store.replace(next);
  EXPECT_NE(store.current().find("a"), nullptr);
}

}  // namespace
}  // namespace floodgate::rules
