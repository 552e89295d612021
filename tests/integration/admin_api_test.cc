// The admin API on the real binary (its own port): the token rules, the allowlist and blocklist
// endpoints and their errors, CIDR edge cases, expiry, and the lists in force on the check port
// (/v1/check, /v1/auth, the Envoy rate limit service's POST /json).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <regex>
#include <thread>

#include "testlib/process.h"

namespace floodgate::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr std::string_view kToken = "s3cret-admin-token";

std::string bearer(std::string_view token = kToken) {
  return "Authorization: Bearer " + std::string(token) + "\r\n";
}

// id_of(): the "id" of an entry the admin API answered with.
std::string id_of(const std::string& body) {
  std::smatch m;
  return std::regex_search(body, m, std::regex(R"re("id":"([a-z]{2}_[0-9a-f]{16})")re"))
             ? m[1].str()
             : "";
}

struct Admin {
  Server server;
  Connection admin;
  Connection api;

  explicit Admin(std::vector<std::string> args = {"--admin-token", std::string(kToken)},
                 std::vector<std::string> env = {})
      : server(std::move(args), std::move(env)), admin(server.admin_port()), api(server.port()) {}

  HttpResponse add(std::string_view list, std::string_view body) {
    return *admin.request("POST", "/admin/" + std::string(list), body, bearer());
  }
  HttpResponse get(std::string_view list) {
    return *admin.request("GET", "/admin/" + std::string(list), {}, bearer());
  }
  int check(std::string_view body) { return api.request("POST", "/v1/check", body)->status; }
};

TEST(AdminApi, ListensOnItsOwnPortApartFromTheCheckPort) {
  Admin a;
  ASSERT_GT(a.server.admin_port(), 0);
  EXPECT_NE(a.server.admin_port(), a.server.port());
  EXPECT_EQ(a.api.request("GET", "/admin/blocklist", {}, bearer())->status, 404);
  EXPECT_EQ(a.get("blocklist").status, 200);
}

TEST(AdminApi, WithoutATokenReadsAreAnsweredAndChangesRefused) {
  Admin a(std::vector<std::string>{});
  auto list = a.admin.request("GET", "/admin/blocklist");
  EXPECT_EQ(list->status, 200);
  EXPECT_THAT(list->body, HasSubstr(R"("count":0)"));
  auto add = a.admin.request("POST", "/admin/blocklist", R"({"key":"k"})");
  EXPECT_EQ(add->status, 403);
  EXPECT_THAT(add->body, HasSubstr("admin_token_not_configured"));
  EXPECT_EQ(a.admin.request("DELETE", "/admin/blocklist/bl_0000000000000000")->status, 403);
  EXPECT_THAT(a.admin.request("GET", "/admin/blocklist")->body, HasSubstr(R"("count":0)"));
  EXPECT_EQ(a.check(R"({"key":"k"})"), 200);
}

TEST(AdminApi, TokenMissingWrongAndRight) {
  Admin a;
  auto missing = a.admin.request("GET", "/admin/allowlist");
  EXPECT_EQ(missing->status, 401);
  EXPECT_THAT(missing->header("WWW-Authenticate"), HasSubstr("Bearer"));
  auto wrong = a.admin.request("GET", "/admin/allowlist", {}, bearer("s3cret-admin-tokem"));
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(a.admin.request("GET", "/admin/allowlist", {}, bearer("s3cret"))->status, 401);
  EXPECT_EQ(a.admin.request("POST", "/admin/blocklist", R"({"key":"k"})", bearer("x"))->status,
            401);
  EXPECT_EQ(a.get("allowlist").status, 200);
  EXPECT_EQ(a.add("blocklist", R"({"key":"k"})").status, 201);
  // The token never reaches the log, not even from a failed attempt.
  EXPECT_THAT(a.server.output(), Not(HasSubstr(kToken)));
}

TEST(AdminApi, BlocklistedKeysAndAddressesAreRefusedWithoutTouchingTheStore) {
  Admin a;
  auto key = a.add("blocklist", R"({"key":"bad-client","note":"scraper"})");
  ASSERT_EQ(key.status, 201) << key.body;
  EXPECT_THAT(key.body, HasSubstr(R"("key":"bad-client")"));
  EXPECT_THAT(key.body, HasSubstr(R"("note":"scraper")"));
  EXPECT_THAT(key.body, HasSubstr(R"("added_by":"127.0.0.1")"));
  EXPECT_THAT(key.body, HasSubstr(R"("expires_at":null)"));
  auto r = a.api.request("POST", "/v1/check", R"({"key":"bad-client"})");
  EXPECT_EQ(r->status, 403);
  EXPECT_THAT(r->body, HasSubstr(R"("allowed":false)"));
  EXPECT_THAT(r->body, HasSubstr(R"("reason":"blocklisted")"));
  EXPECT_EQ(a.check(R"({"key":"good-client"})"), 200);

  ASSERT_EQ(a.add("blocklist", R"({"ip":"10.0.0.0/8"})").status, 201);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"10.1.2.3"})"), 403);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"::ffff:10.1.2.3"})"), 403);  // mapped: the same client
  EXPECT_EQ(a.check(R"({"key":"x","ip":"11.0.0.1"})"), 200);
  EXPECT_EQ(a.check(R"({"key":"x"})"), 200);  // no address given: ip entries do not apply
  auto bad_ip = a.api.request("POST", "/v1/check", R"({"key":"x","ip":"10.1.2"})");
  EXPECT_EQ(bad_ip->status, 400);
  EXPECT_THAT(bad_ip->body, HasSubstr(R"("field":"ip")"));

  // /v1/auth: the address nginx passes on.
  EXPECT_EQ(a.api.request("GET", "/v1/auth", {}, "X-Real-IP: 10.9.9.9\r\n")->status, 403);
  EXPECT_EQ(a.api.request("GET", "/v1/auth", {}, "X-Real-IP: 192.0.2.1\r\n")->status, 204);
  EXPECT_EQ(a.api.request("GET", "/v1/auth", {}, "X-API-Key: bad-client\r\n")->status, 403);

  auto metrics = a.api.request("GET", "/metrics")->body;
  EXPECT_THAT(metrics, HasSubstr(R"(floodgate_decisions_listed_total{list="blocklist"} 5)"));
}

TEST(AdminApi, AllowlistedChecksConsumeNothingAndTheBlocklistWins) {
  Admin a;
  const std::string once = R"({"key":"vip","algorithm":"fixed_window","limit":1,"window":3600})";
  auto vip = a.add("allowlist", R"({"key":"vip"})");
  ASSERT_EQ(vip.status, 201);
  for (int i = 0; i < 3; ++i) {
    auto r = a.api.request("POST", "/v1/check", once);
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->body, HasSubstr(R"("reason":"allowlisted")"));
  }
  ASSERT_EQ(a.add("blocklist", R"({"key":"vip"})").status, 201);
  EXPECT_EQ(a.check(once), 403);
  // Off both lists: the limit applies from a fresh count (nothing was consumed meanwhile).
  auto blocks = a.get("blocklist").body;
  ASSERT_EQ(a.admin.request("DELETE", "/admin/blocklist/" + id_of(blocks), {}, bearer())->status,
            204);
  ASSERT_EQ(a.admin.request("DELETE", "/admin/allowlist/" + id_of(vip.body), {}, bearer())->status,
            204);
  EXPECT_EQ(a.check(once), 200);
  EXPECT_EQ(a.check(once), 429);
  EXPECT_EQ(a.admin.request("DELETE", "/admin/allowlist/" + id_of(vip.body), {}, bearer())->status,
            404);
  EXPECT_THAT(a.get("allowlist").body, HasSubstr(R"("count":0)"));
}

TEST(AdminApi, EntriesExpireOnTime) {
  Admin a;
  auto added = a.add("blocklist", R"({"key":"brief","expires_in_s":0.3})");
  ASSERT_EQ(added.status, 201);
  EXPECT_THAT(added.body, Not(HasSubstr(R"("expires_at":null)")));
  EXPECT_EQ(a.check(R"({"key":"brief"})"), 403);
  EXPECT_THAT(a.get("blocklist").body, HasSubstr(R"("count":1)"));
  const auto until = std::chrono::steady_clock::now() + 3s;
  int status = 403;
  while (status == 403 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
    status = a.check(R"({"key":"brief"})");
  }
  EXPECT_EQ(status, 200);
  EXPECT_THAT(a.get("blocklist").body, HasSubstr(R"("count":0)"));
}

TEST(AdminApi, CidrEdgeCases) {
  Admin a;
  ASSERT_EQ(a.add("blocklist", R"({"ip":"0.0.0.0/0"})").status, 201);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"203.0.113.9"})"), 403);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"2001:db8::1"})"), 200);  // /0 of IPv4 only
  ASSERT_EQ(a.add("blocklist", R"({"ip":"2001:db8::42/128"})").status, 201);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"2001:db8::42"})"), 403);
  EXPECT_EQ(a.check(R"({"key":"x","ip":"2001:db8::43"})"), 200);
  auto canonical = a.add("allowlist", R"({"ip":"2001:DB8:0:0::0/64"})");
  ASSERT_EQ(canonical.status, 201);
  EXPECT_THAT(canonical.body, HasSubstr(R"("ip":"2001:db8::/64")"));
  EXPECT_THAT(a.add("allowlist", R"({"ip":"198.51.100.7"})").body,
              HasSubstr(R"("ip":"198.51.100.7/32")"));

  for (const char* bad :
       {R"({"ip":"1.2.3.4/33"})", R"({"ip":"1.2.3.4/"})", R"({"ip":"1.2.3"})", R"({"ip":""})",
        R"({"ip":"::/129"})", R"({"ip":"fe80::1%eth0"})", R"({"ip":"garbage"})",
        R"({"ip":"1.2.3.4/-1"})", R"({"ip":"10.1.2.3/8"})", R"({"ip":7})"}) {
    auto r = a.add("blocklist", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_THAT(r.body, HasSubstr(R"("field":"ip")")) << bad;
  }
  EXPECT_THAT(a.add("blocklist", R"({"ip":"10.1.2.3/8"})").body, HasSubstr("10.0.0.0/8"));
  EXPECT_THAT(a.get("blocklist").body, HasSubstr(R"("count":2)"));  // nothing else stored
}

TEST(AdminApi, BadInputIsA4xxNamingTheFieldAndStoresNothing) {
  Admin a;
  struct Case {
    std::string_view body;
    std::string_view field;  // "" for errors about the body as a whole
  };
  for (const Case& c :
       std::initializer_list<Case>{{"not json", ""},
                                   {"[1,2]", ""},
                                   {"{}", "ip"},
                                   {R"({"ip":"1.2.3.4","key":"k"})", "ip"},
                                   {R"({"key":""})", "key"},
                                   {R"({"key":"k","expires_in_s":-1})", "expires_in_s"},
                                   {R"({"key":"k","expires_in_s":"soon"})", "expires_in_s"},
                                   {R"({"key":"k","expires_in_s":1e300})", "expires_in_s"},
                                   {R"({"key":"k","colour":"red"})", "colour"},
                                   {R"({"key":"k","note":5})", "note"},
                                   {R"({"key":5})", "key"}}) {
    auto r = a.add("allowlist", c.body);
    EXPECT_GE(r.status, 400) << c.body;
    EXPECT_LT(r.status, 500) << c.body;
    if (!c.field.empty()) {
      EXPECT_THAT(r.body, HasSubstr("\"field\":\"" + std::string(c.field) + "\"")) << c.body;
    }
  }
  EXPECT_EQ(a.admin.request("PUT", "/admin/allowlist", "{}", bearer())->status, 405);
  EXPECT_EQ(a.admin.request("GET", "/admin/allowlist/al_1", {}, bearer())->status, 405);
  EXPECT_EQ(a.admin.request("GET", "/admin/nothing", {}, bearer())->status, 404);
  EXPECT_THAT(a.get("allowlist").body, HasSubstr(R"("count":0)"));
  EXPECT_GT(a.server.wait_exit(10ms).value_or(-1), -2);  // still running: no crash
}

TEST(AdminApi, ListsAreBoundedByAdminMaxEntries) {
  Admin a({"--admin-token", std::string(kToken), "--admin-max-entries", "2"});
  EXPECT_EQ(a.add("blocklist", R"({"key":"a"})").status, 201);
  EXPECT_EQ(a.add("blocklist", R"({"key":"b"})").status, 201);
  auto full = a.add("blocklist", R"({"key":"c"})");
  EXPECT_EQ(full.status, 409);
  EXPECT_THAT(full.body, HasSubstr("ADMIN_MAX_ENTRIES"));
  EXPECT_EQ(a.add("blocklist", R"({"key":"a"})").status, 201);  // replacing is not growing
  EXPECT_EQ(a.add("allowlist", R"({"key":"c"})").status, 201);  // each list has its own bound
}

TEST(AdminApi, EveryChangeWritesOneAuditLine) {
  Admin a;
  auto added = a.add("blocklist", R"({"ip":"192.0.2.0/24"})");
  ASSERT_EQ(added.status, 201);
  const std::string id = id_of(added.body);
  ASSERT_EQ(a.admin.request("DELETE", "/admin/blocklist/" + id, {}, bearer())->status, 204);
  ASSERT_TRUE(a.server.wait_for_output("\\\"action\\\":\\\"remove\\\"", 2s)) << a.server.output();
  const std::string log = a.server.output();
  EXPECT_THAT(log, HasSubstr("\\\"action\\\":\\\"add\\\""));
  EXPECT_THAT(log, HasSubstr(id));
  EXPECT_THAT(log, HasSubstr("\\\"ip\\\":\\\"192.0.2.0/24\\\""));
  EXPECT_THAT(log, HasSubstr("\\\"from\\\":\\\"127.0.0.1\\\""));
}

TEST(AdminApi, TheEnvoyRateLimitServiceHonoursTheListsOnRemoteAddress) {
  Admin a;
  ASSERT_EQ(a.add("blocklist", R"({"ip":"198.51.100.0/24"})").status, 201);
  ASSERT_EQ(a.add("allowlist", R"({"ip":"203.0.113.5"})").status, 201);
  auto ask = [&](std::string_view address) {
    return a.api.request("POST", "/json",
                         R"({"domain":"d","descriptors":[{"entries":[{"key":"remote_address",)"
                         R"("value":")" +
                             std::string(address) + R"("}]}]})");
  };
  auto blocked = ask("198.51.100.77");
  EXPECT_EQ(blocked->status, 429);
  EXPECT_THAT(blocked->body, HasSubstr("OVER_LIMIT"));
  auto allowed = ask("203.0.113.5");
  EXPECT_EQ(allowed->status, 200);
  EXPECT_THAT(allowed->body, HasSubstr(R"("overallCode":"OK")"));
}

// ---- Overrides, reset, stats, events, rules and the dashboard page ----

namespace limits {

std::string override_id(const std::string& body) {
  std::smatch m;
  return std::regex_search(body, m, std::regex(R"re("id":"(ov_[0-9a-f]{16})")re")) ? m[1].str()
                                                                                   : "";
}

constexpr std::string_view kRules =
    "rules:\n"
    "  login:\n"
    "    algorithm: fixed_window\n"
    "    limit: 100\n"
    "    window: 3600\n"
    "  api:\n"
    "    algorithm: token_bucket\n"
    "    capacity: 50\n"
    "    refill_rate: 1\n"
    "    tiers:\n"
    "      by: key_prefix\n"
    "      pro: {capacity: 500, refill_rate: 10}\n";

struct WithRules {
  TempDir dir;
  std::string file = dir.write("rules.yaml", std::string(kRules));
  Admin a{{"--admin-token", std::string(kToken), "--config", file}};
};

}  // namespace limits

TEST(AdminLimits, AnOverrideChangesTheNextDecisionOfItsKeyAndIsListed) {
  Admin a;
  EXPECT_EQ(a.check(R"({"key":"user:1"})"), 200);  // the defaults: 1000 per hour
  auto set =
      a.add("limits", R"({"key":"user:1","algorithm":"fixed_window","limit":2,"window":3600})");
  ASSERT_EQ(set.status, 201) << set.body;
  EXPECT_THAT(set.body, HasSubstr(R"("key":"user:1")"));
  EXPECT_THAT(set.body, HasSubstr(R"("rule":null)"));
  EXPECT_THAT(set.body, HasSubstr(R"("limit":2)"));
  const std::string id = limits::override_id(set.body);
  ASSERT_FALSE(id.empty()) << set.body;
  auto first = a.api.request("POST", "/v1/check", R"({"key":"user:1"})");
  EXPECT_EQ(first->status, 200);
  EXPECT_THAT(first->body, HasSubstr(R"("limit":2)"));
  EXPECT_EQ(a.check(R"({"key":"user:1"})"), 200);
  EXPECT_EQ(a.check(R"({"key":"user:1"})"), 429);
  EXPECT_EQ(a.check(R"({"key":"user:2"})"), 200);  // other keys keep their limit
  // An inline policy in the request is overridden too: the operator's word is the last.
  EXPECT_EQ(a.check(R"({"key":"user:1","algorithm":"fixed_window","limit":1000,"window":3600})"),
            429);

  auto listed = a.get("limits");
  EXPECT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(R"("count":1)"));
  EXPECT_THAT(listed.body, HasSubstr(id));

  ASSERT_EQ(a.admin.request("DELETE", "/admin/limits/" + id, {}, bearer())->status, 204);
  EXPECT_EQ(a.admin.request("DELETE", "/admin/limits/" + id, {}, bearer())->status, 404);
  auto after = a.api.request("POST", "/v1/check", R"({"key":"user:1"})");
  EXPECT_THAT(after->body, HasSubstr(R"("limit":1000)"));
}

TEST(AdminLimits, TheLongestPrefixWinsAndAnExactKeyBeatsEveryPrefix) {
  Admin a;
  ASSERT_EQ(
      a.add("limits", R"({"key_prefix":"t:","algorithm":"fixed_window","limit":3,"window":3600})")
          .status,
      201);
  ASSERT_EQ(a.add("limits",
                  R"({"key_prefix":"t:acme:","algorithm":"fixed_window","limit":5,"window":3600})")
                .status,
            201);
  ASSERT_EQ(
      a.add("limits", R"({"key":"t:acme:1","algorithm":"fixed_window","limit":7,"window":3600})")
          .status,
      201);
  auto limit_of = [&](std::string_view key) {
    auto r = a.api.request("POST", "/v1/inspect", "{\"key\":\"" + std::string(key) + "\"}");
    std::smatch m;
    return std::regex_search(r->body, m, std::regex(R"("limit":([0-9]+))")) ? std::stoi(m[1]) : -1;
  };
  EXPECT_EQ(limit_of("t:other"), 3);
  EXPECT_EQ(limit_of("t:acme:2"), 5);
  EXPECT_EQ(limit_of("t:acme:1"), 7);
  EXPECT_EQ(limit_of("u:1"), 1000);
}

TEST(AdminLimits, AnOverrideForARuleAppliesToThatRulesChecksOnly) {
  limits::WithRules s;
  Admin& a = s.a;
  ASSERT_EQ(
      a.add("limits",
            R"({"key":"alice","rule":"login","algorithm":"fixed_window","limit":1,"window":3600})")
          .status,
      201);
  EXPECT_EQ(a.check(R"({"rule":"login","key":"alice"})"), 200);
  EXPECT_EQ(a.check(R"({"rule":"login","key":"alice"})"), 429);
  EXPECT_EQ(a.check(R"({"rule":"api","key":"alice"})"), 200);
  EXPECT_EQ(a.check(R"({"key":"alice"})"), 200);
  auto unknown =
      a.add("limits", R"({"key":"x","rule":"nope","algorithm":"gcra","limit":1,"window":1})");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_THAT(unknown.body, HasSubstr(R"("field":"rule")"));
}

TEST(AdminLimits, OverridesExpireOnTime) {
  Admin a;
  auto set = a.add(
      "limits",
      R"({"key":"brief","algorithm":"fixed_window","limit":1,"window":3600,"expires_in_s":0.3})");
  ASSERT_EQ(set.status, 201);
  EXPECT_THAT(set.body, Not(HasSubstr(R"("expires_at":null)")));
  EXPECT_EQ(a.check(R"({"key":"brief"})"), 200);
  EXPECT_EQ(a.check(R"({"key":"brief"})"), 429);
  const auto until = std::chrono::steady_clock::now() + 3s;
  int status = 429;
  while (status == 429 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(50ms);
    status = a.check(R"({"key":"brief"})");
  }
  EXPECT_EQ(status, 200);
  EXPECT_THAT(a.get("limits").body, HasSubstr(R"("count":0)"));
}

TEST(AdminLimits, BadInputIsA4xxNamingTheFieldAndStoresNothing) {
  Admin a;
  struct Case {
    std::string_view body;
    int status;
    std::string_view field;
  };
  const Case cases[] = {
      {R"({"algorithm":"fixed_window","limit":1,"window":1})", 400, "key"},
      {R"({"key":"a","key_prefix":"b","algorithm":"fixed_window","limit":1,"window":1})", 400,
       "key"},
      {R"({"key":"","algorithm":"fixed_window","limit":1,"window":1})", 400, "key"},
      {R"({"key":7,"algorithm":"fixed_window","limit":1,"window":1})", 400, "key"},
      {R"({"key":"a","limit":1,"window":1})", 400, "algorithm"},
      {R"({"key":"a","algorithm":"leaky","limit":1,"window":1})", 400, "algorithm"},
      {R"({"key":"a","algorithm":"fixed_window","limit":-1,"window":1})", 400, "limit"},
      {R"({"key":"a","algorithm":"fixed_window","limit":"5","window":1})", 400, "limit"},
      {R"({"key":"a","algorithm":"fixed_window","limit":1,"window":0})", 400, "window"},
      {R"({"key":"a","algorithm":"fixed_window","limit":1,"window":1,"refill_rate":2})", 400,
       "refill_rate"},
      {R"({"key":"a","algorithm":"fixed_window","limit":1,"window":1,"expires_in_s":0})", 400,
       "expires_in_s"},
      {R"({"key":"a","algorithm":"fixed_window","limit":1,"window":1,"colour":"red"})", 400,
       "colour"},
      {R"({"key":"a","rule":"login","algorithm":"fixed_window","limit":1,"window":1})", 400,
       "rule"},
      {R"([1,2])", 400, ""},
      {R"({"key":)", 400, ""},
  };
  for (const Case& c : cases) {
    auto r = a.add("limits", c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    if (c.field.empty()) {
      EXPECT_THAT(r.body, HasSubstr(R"("field":null)")) << c.body;
    } else {
      EXPECT_THAT(r.body, HasSubstr("\"field\":\"" + std::string(c.field) + "\"")) << c.body;
    }
  }
  EXPECT_THAT(a.get("limits").body, HasSubstr(R"("count":0)"));
  EXPECT_EQ(a.admin.request("PUT", "/admin/limits", "{}", bearer())->status, 405);
  EXPECT_EQ(a.admin.request("DELETE", "/admin/limits/ov_0000000000000000", {}, bearer())->status,
            404);
  EXPECT_EQ(a.admin.request("POST", "/admin/limits/x/y", "{}", bearer())->status, 404);
  // Without a token, changes are refused.
  Admin read_only(std::vector<std::string>{});
  auto refused = read_only.admin.request(
      "POST", "/admin/limits", R"({"key":"a","algorithm":"fixed_window","limit":1,"window":1})");
  EXPECT_EQ(refused->status, 403);
  EXPECT_THAT(refused->body, HasSubstr("admin_token_not_configured"));
}

TEST(AdminReset, AResetKeyStartsFreshForInlineChecksAndEveryRule) {
  limits::WithRules s;
  Admin& a = s.a;
  const std::string inline_check =
      R"({"key":"bob","algorithm":"fixed_window","limit":1,"window":3600})";
  EXPECT_EQ(a.check(inline_check), 200);
  EXPECT_EQ(a.check(inline_check), 429);
  ASSERT_EQ(
      a.add("limits",
            R"({"key":"bob","rule":"login","algorithm":"fixed_window","limit":1,"window":3600})")
          .status,
      201);
  EXPECT_EQ(a.check(R"({"rule":"login","key":"bob"})"), 200);
  EXPECT_EQ(a.check(R"({"rule":"login","key":"bob"})"), 429);
  // With a rule: only that rule's state.
  auto login_only = a.add("reset", R"({"key":"bob","rule":"login"})");
  ASSERT_EQ(login_only.status, 200) << login_only.body;
  EXPECT_THAT(login_only.body, HasSubstr(R"("reset":true)"));
  EXPECT_EQ(a.check(R"({"rule":"login","key":"bob"})"), 200);
  EXPECT_EQ(a.check(inline_check), 429);
  // Without: everything of the key.
  ASSERT_EQ(a.add("reset", R"({"key":"bob"})").status, 200);
  EXPECT_EQ(a.check(inline_check), 200);
  EXPECT_EQ(a.check(R"({"rule":"login","key":"bob"})"), 200);
  EXPECT_TRUE(a.server.wait_for_output("\\\"action\\\":\\\"reset\\\"", 2s));

  EXPECT_EQ(a.add("reset", R"({})").status, 400);
  EXPECT_THAT(a.add("reset", R"({"key":""})").body, HasSubstr(R"("field":"key")"));
  EXPECT_THAT(a.add("reset", R"({"key":"bob","rule":"nope"})").body,
              HasSubstr(R"("field":"rule")"));
  EXPECT_THAT(a.add("reset", R"({"key":"bob","x":1})").body, HasSubstr(R"("field":"x")"));
  EXPECT_EQ(a.admin.request("GET", "/admin/reset", {}, bearer())->status, 405);
}

TEST(AdminStats, CountsDecisionsByRuleTheRateTheLatencyAndTheTopDeniedKeys) {
  limits::WithRules s;
  Admin& a = s.a;
  for (int i = 0; i < 5; ++i)
    a.check(R"({"key":"hot","algorithm":"fixed_window","limit":1,"window":3600})");
  for (int i = 0; i < 3; ++i) a.check(R"({"rule":"login","key":"carol"})");
  auto r = a.admin.request("GET", "/admin/stats", {}, bearer());
  ASSERT_EQ(r->status, 200);
  const std::string& b = r->body;
  EXPECT_THAT(b, HasSubstr(R"("scope":"instance")"));
  EXPECT_THAT(b, HasSubstr(R"("decisions":{"allowed":4,"denied":4)"));
  EXPECT_THAT(b, HasSubstr(R"({"rule":"login","allowed":3,"denied":0,"degraded":0})"));
  EXPECT_THAT(b, HasSubstr(R"x({"rule":"(inline)","allowed":1,"denied":4,"degraded":0})x"));
  EXPECT_THAT(b, HasSubstr(R"("top_limited":[{"key":"hot","count":4,"error":0}])"));
  EXPECT_THAT(b, HasSubstr(R"("latency_ms":{"p50":)"));
  EXPECT_THAT(b, HasSubstr(R"("count":8})"));
  EXPECT_THAT(b, HasSubstr(R"("store":{"name":"memory","ready":true)"));
  EXPECT_THAT(b, HasSubstr(R"("uptime_s":)"));
  // The history holds the seconds just gone by, so once this second is over the rate shows.
  std::this_thread::sleep_for(1100ms);
  auto later = a.admin.request("GET", "/admin/stats?scope=cluster", {}, bearer());
  EXPECT_THAT(later->body, HasSubstr(R"("scope":"cluster")"));
  EXPECT_THAT(later->body, HasSubstr(R"("last_1m":{"allowed":0.07,"denied":0.07})"));
  EXPECT_EQ(a.admin.request("GET", "/admin/stats?scope=galaxy", {}, bearer())->status, 400);
  EXPECT_EQ(a.admin.request("GET", "/admin/stats")->status, 401);
  EXPECT_EQ(a.admin.request("POST", "/admin/stats", "{}", bearer())->status, 405);
}

TEST(AdminStats, EventsStreamTheStatsEverySecond) {
  Admin a;
  Connection events(a.server.admin_port());
  ASSERT_TRUE(events.send_raw("GET /admin/events HTTP/1.1\r\nHost: x\r\n" + bearer() + "\r\n"));
  auto head = events.read_response();
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Type"), "text/event-stream");
  EXPECT_EQ(head->header("Cache-Control"), "no-cache");
  auto first = events.read_until("event: stats\ndata: ");
  ASSERT_TRUE(first.has_value());
  auto data = events.read_until("\n\n");
  ASSERT_TRUE(data.has_value());
  EXPECT_THAT(*data, HasSubstr(R"("decisions":{"allowed":0)"));
  a.check(R"({"key":"k"})");
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(events.read_until("event: stats\ndata: ", 3s).has_value());
  auto next = events.read_until("\n\n");
  ASSERT_TRUE(next.has_value());
  EXPECT_THAT(*next, HasSubstr(R"("decisions":{"allowed":1)"));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 2s);
  // The stream needs the token like every other admin GET.
  Connection anonymous(a.server.admin_port());
  EXPECT_EQ(anonymous.request("GET", "/admin/events")->status, 401);
  // Shutting down ends the stream; the server exits cleanly.
  a.server.signal(SIGTERM);
  EXPECT_EQ(a.server.wait_exit(5s), 0);
}

TEST(AdminStats, RulesAreListedWithTheirTiers) {
  limits::WithRules s;
  auto r = s.a.admin.request("GET", "/admin/rules", {}, bearer());
  ASSERT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr(R"({"name":"api","algorithm":"token_bucket")"));
  EXPECT_THAT(r->body, HasSubstr(R"("tiers":[{"tier":"pro")"));
  EXPECT_THAT(r->body, HasSubstr(R"({"name":"login","algorithm":"fixed_window")"));
  Admin none;
  EXPECT_EQ(none.admin.request("GET", "/admin/rules", {}, bearer())->body, R"({"rules":[]})");
}

// envoyproxy/ratelimit's debug endpoint, on the admin port: the Envoy config in force, its text.
TEST(AdminStats, RlconfigPrintsTheEnvoyConfigInForceAsEnvoyRatelimitDoes) {
  TempDir dir;
  const std::string file = dir.write("rl.yaml",
                                     "domain: edge\n"
                                     "descriptors:\n"
                                     "  - key: remote_address\n"
                                     "    rate_limit: {unit: second, requests_per_unit: 5}\n");
  Admin a{{"--admin-token", std::string(kToken), "--rls-config", file}};
  auto r = a.admin.request("GET", "/rlconfig", {}, bearer());
  ASSERT_EQ(r->status, 200);
  EXPECT_THAT(r->header("Content-Type"), HasSubstr("text/plain"));
  EXPECT_EQ(r->body,
            "edge.remote_address: unit=SECOND requests_per_unit=5, shadow_mode: false, "
            "quota_mode: false\n");
  EXPECT_EQ(a.admin.request("GET", "/rlconfig")->status, 401);  // the token guards reads here too
  EXPECT_EQ(a.admin.request("POST", "/rlconfig", "{}", bearer())->status, 405);
  EXPECT_EQ(a.api.request("GET", "/rlconfig")->status, 404);  // not on the check port

  // A reload shows at once.
  dir.write("rl.yaml",
            "domain: edge\n"
            "descriptors:\n"
            "  - key: remote_address\n"
            "    shadow_mode: true\n"
            "    rate_limit: {unit: minute, requests_per_unit: 50}\n");
  a.server.signal(SIGHUP);
  ASSERT_TRUE(a.server.wait_for_output("RLS config reloaded on SIGHUP", 5s)) << a.server.output();
  EXPECT_EQ(a.admin.request("GET", "/rlconfig", {}, bearer())->body,
            "edge.remote_address: unit=MINUTE requests_per_unit=50, shadow_mode: true, "
            "quota_mode: false\n");

  Admin none;  // no Envoy config: an empty text, as there
  auto empty = none.admin.request("GET", "/rlconfig", {}, bearer());
  EXPECT_EQ(empty->status, 200);
  EXPECT_EQ(empty->body, "");
}

TEST(AdminDashboard, ThePageIsServedWithoutTheTokenAndHoldsNoData) {
  Admin a;
  auto page = a.admin.request("GET", "/");
  ASSERT_EQ(page->status, 200);
  EXPECT_THAT(page->header("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(page->body, HasSubstr("<!doctype html>"));
  EXPECT_THAT(page->body, HasSubstr("admin/events"));
  EXPECT_THAT(page->body, Not(HasSubstr(kToken)));
  // No external assets: nothing loaded from another origin.
  EXPECT_THAT(page->body, Not(::testing::ContainsRegex(R"((src|href)=["']https?://)")));
  EXPECT_EQ(a.admin.request("GET", "/index.html")->status, 200);
  EXPECT_EQ(a.admin.request("POST", "/", "{}")->status, 405);
  EXPECT_EQ(a.admin.request("GET", "/elsewhere")->status, 404);
}

}  // namespace
}  // namespace floodgate::testing
