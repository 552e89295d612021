// The admin API on the real binary (its own port): the token rules, the allowlist and blocklist
// endpoints and their errors, CIDR edge cases, expiry, and the lists in force on the check port
// (/v1/check, /v1/auth, the Envoy rate limit service's POST /json).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  const std::string once = R"({"key":"vip","algorithm":"fixed_window","limit":1,"window":60})";
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

}  // namespace
}  // namespace floodgate::testing
