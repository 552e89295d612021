// The C++ library's HTTP middleware helper: which route applies, how callers are keyed, and the
// verdict's status, headers and body — on the memory store with a manual clock.
#include "floodgate/middleware.h"

#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "floodgate/memory_store.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using ::testing::Pair;

class MiddlewareTest : public ::testing::Test {
 protected:
  ManualClock clock{Micros{1'700'000'000'000'000}};
  MemoryStore store{clock};
  Limiter limiter{store};
  Middleware limits{limiter,
                    {
                        {.name = "write",
                         .method = "POST",
                         .path_prefix = "/api/data",
                         .policy = Policy::fixed_window(2, 1min).value(),
                         .key_by = KeyBy::kApiKey},
                        {.name = "public",
                         .path_prefix = "/api/public",
                         .policy = Policy::fixed_window(3, 1min).value()},
                        {.name = "tenant",
                         .path_prefix = "/api/tenant/",
                         .policy = Policy::fixed_window(1, 1min).value(),
                         .key_by = KeyBy::kHeader,
                         .header = "X-Tenant"},
                    },
                    FailureMode::kFailOpen,
                    clock};
  std::map<std::string, std::string, std::less<>> headers;

  Verdict check(std::string_view method, std::string_view path, std::string_view ip = "10.0.0.1") {
    return limits.check({.method = method,
                         .path = path,
                         .client_ip = ip,
                         .headers = [this](std::string_view name) -> std::string_view {
                           auto it = headers.find(name);
                           return it == headers.end() ? std::string_view() : it->second;
                         }});
  }
  static std::string header(const Verdict& v, std::string_view name) {
    for (const auto& [n, value] : v.headers) {
      if (n == name) return value;
    }
    return "(absent)";
  }
};

TEST_F(MiddlewareTest, TheFirstMatchingRouteAppliesOnPathBoundaries) {
  EXPECT_EQ(limits.route_for("GET", "/api/public")->name, "public");
  EXPECT_EQ(limits.route_for("GET", "/api/public/items")->name, "public");
  EXPECT_EQ(limits.route_for("GET", "/api/publicity"), nullptr);
  EXPECT_EQ(limits.route_for("POST", "/api/data")->name, "write");
  EXPECT_EQ(limits.route_for("GET", "/api/data"), nullptr);  // reads are not limited
  EXPECT_EQ(limits.route_for("GET", "/api/tenant/x")->name, "tenant");
  const Verdict none = check("GET", "/elsewhere");
  EXPECT_FALSE(none.limited);
  EXPECT_EQ(none.route, nullptr);
  EXPECT_TRUE(none.headers.empty());
}

TEST_F(MiddlewareTest, CountsDownThenAnswers429WithHeadersAndABody) {
  for (int remaining : {2, 1, 0}) {
    const Verdict v = check("GET", "/api/public");
    EXPECT_FALSE(v.limited);
    EXPECT_EQ(v.status, 200);
    EXPECT_EQ(header(v, "X-RateLimit-Remaining"), std::to_string(remaining));
  }
  const Verdict v = check("GET", "/api/public");
  EXPECT_TRUE(v.limited);
  EXPECT_EQ(v.status, 429);
  EXPECT_EQ(header(v, "RateLimit-Policy"), "\"public\";q=3;w=60");
  // 1,700,000,000 s is 20 s into its minute: the window ends in 40 s, at 1,700,000,040.
  EXPECT_EQ(header(v, "RateLimit"), "\"public\";r=0;t=40");
  EXPECT_EQ(header(v, "X-RateLimit-Limit"), "3");
  EXPECT_EQ(header(v, "X-RateLimit-Reset"), "1700000040");
  EXPECT_EQ(header(v, "Retry-After"), "40");
  EXPECT_THAT(v.body, ::testing::HasSubstr(R"("code":"rate_limited")"));
  // Another address has its own counter.
  EXPECT_FALSE(check("GET", "/api/public", "10.0.0.2").limited);
  clock.advance(1min);
  EXPECT_FALSE(check("GET", "/api/public").limited);
}

TEST_F(MiddlewareTest, KeysByApiKeyOrHeaderFallingBackToTheAddress) {
  headers["X-API-Key"] = "alice";
  EXPECT_FALSE(check("POST", "/api/data").limited);
  EXPECT_FALSE(check("POST", "/api/data", "10.9.9.9").limited);  // same key, other address
  EXPECT_TRUE(check("POST", "/api/data").limited);
  headers["X-API-Key"] = "bob";
  EXPECT_FALSE(check("POST", "/api/data").limited);
  // Without a key the address is the caller, counted apart from any key.
  headers.erase("X-API-Key");
  EXPECT_FALSE(check("POST", "/api/data").limited);

  headers["X-Tenant"] = "t1";
  EXPECT_FALSE(check("GET", "/api/tenant/a").limited);
  EXPECT_TRUE(check("GET", "/api/tenant/b", "10.0.0.7").limited);
  headers["X-Tenant"] = "t2";
  EXPECT_FALSE(check("GET", "/api/tenant/a").limited);
}

TEST_F(MiddlewareTest, ACostAboveTheLimitHasNoRetryAfter) {
  Middleware heavy(limiter, {{.name = "heavy",
                              .path_prefix = "/h",
                              .policy = Policy::fixed_window(2, 1min).value(),
                              .cost = 3}});
  const Verdict v = heavy.check({.method = "GET", .path = "/h", .client_ip = "1.2.3.4"});
  EXPECT_TRUE(v.limited);
  EXPECT_EQ(header(v, "Retry-After"), "(absent)");
  EXPECT_THAT(v.body, ::testing::HasSubstr(R"("retry_after_s":null)"));
}

}  // namespace
}  // namespace floodgate
