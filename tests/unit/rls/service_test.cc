// ShouldRateLimit semantics on the memory store with a manual clock: what envoyproxy/ratelimit
// answers (src/service/ratelimit.go, src/limiter/base_limiter.go) for each case, without a socket.
// The gRPC and JSON fronts are covered by the integration tests.
#include "rls/service.h"
#include "unit/rls/parse_config.h"

#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "floodgate/memory_store.h"

namespace floodgate::rls {
namespace {

using namespace std::chrono_literals;

constexpr std::uint32_t kMax = 4294967295u;

// A nested config in envoyproxy/ratelimit's documented style.
const char* kConfig = R"(
domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 3}
  - key: path
    value: /login
    rate_limit: {unit: second, requests_per_unit: 2}
  - key: path
    value: /static/*
    rate_limit: {unlimited: true}
  - key: path
    value: /quiet
  - key: tenant
    value: acme
    descriptors:
      - key: plan
        descriptors:
          - key: user
            rate_limit: {unit: hour, requests_per_unit: 5, name: per_user}
  - key: shadow
    rate_limit: {unit: minute, requests_per_unit: 1}
    shadow_mode: true
  - key: quota_a
    rate_limit: {unit: minute, requests_per_unit: 1}
    quota_mode: true
  - key: quota_b
    rate_limit: {unit: minute, requests_per_unit: 1}
    quota_mode: true
  - key: banned
    rate_limit: {unit: minute, requests_per_unit: 0}
  - key: generic
    rate_limit: {unit: minute, requests_per_unit: 100, name: generic}
  - key: specific
    rate_limit: {unit: minute, requests_per_unit: 2, replaces: [{name: generic}]}
)";

struct Result {
  Response response;
  std::optional<CallError> error;
};

class ServiceTest : public ::testing::Test {
 protected:
  // 10 s into a minute, so windows of a second and a minute are easy to reason about.
  ManualClock clock{
      Micros{1'700'000'000'000'000 - 1'700'000'000'000'000 % 60'000'000 + 10'000'000}};
  MemoryStore store{clock};
  Limiter limiter{store};
  ServiceOptions options = [this] {
    ServiceOptions o;
    o.clock = &clock;
    o.response_headers = true;
    return o;
  }();
  std::unique_ptr<Service> service =
      std::make_unique<Service>(limiter, options, parse_config(kConfig));

  void reopen(ServiceOptions o) {
    o.clock = &clock;
    service = std::make_unique<Service>(limiter, o, parse_config(kConfig));
  }

  Result call(std::string_view domain, std::vector<Descriptor> descriptors,
              std::uint32_t hits = 0) {
    struct Sync final : Call {
      bool finished = false;
      void done() override { finished = true; }
    } c;
    c.request.domain = domain;
    c.request.descriptors = std::move(descriptors);
    c.request.hits_addend = hits;
    service->should_rate_limit(c);
    EXPECT_TRUE(c.finished);  // the memory store answers inline
    return {c.response, c.error};
  }
  Result one(std::initializer_list<Entry> entries, std::uint32_t hits = 0) {
    return call("edge", {Descriptor{entries}}, hits);
  }
};

TEST_F(ServiceTest, CountsDownThenAnswersOverLimitWithTheUnitsReset) {
  for (std::uint32_t remaining : {2u, 1u, 0u}) {
    const Result r = one({{"remote_address", "10.0.0.1"}});
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.response.overall_code, Code::kOk);
    const DescriptorStatus& st = r.response.statuses.at(0);
    EXPECT_EQ(st.code, Code::kOk);
    ASSERT_TRUE(st.current_limit);
    EXPECT_EQ(st.current_limit->requests_per_unit, 3u);
    EXPECT_EQ(st.current_limit->unit, Unit::kMinute);
    EXPECT_EQ(st.limit_remaining, remaining);
    EXPECT_EQ(st.duration_until_reset, 50s);  // windows aligned to the epoch minute
  }
  const Result over = one({{"remote_address", "10.0.0.1"}});
  EXPECT_EQ(over.response.overall_code, Code::kOverLimit);
  EXPECT_EQ(over.response.statuses[0].code, Code::kOverLimit);
  EXPECT_EQ(over.response.statuses[0].limit_remaining, 0u);
  // A value-less key counts each value apart.
  EXPECT_EQ(one({{"remote_address", "10.0.0.2"}}).response.statuses[0].limit_remaining, 2u);
  // The next minute starts afresh.
  clock.advance(50s);
  EXPECT_EQ(one({{"remote_address", "10.0.0.1"}}).response.overall_code, Code::kOk);
}

TEST_F(ServiceTest, UnknownDomainAndUnmatchedDescriptorsAreOkWithoutALimit) {
  for (const Result& r : {call("nope", {Descriptor{{{"remote_address", "x"}}}}),
                          one({{"path", "/other"}}), one({{"path", "/quiet"}})}) {
    ASSERT_FALSE(r.error);
    EXPECT_EQ(r.response.overall_code, Code::kOk);
    EXPECT_EQ(r.response.statuses[0].code, Code::kOk);
    EXPECT_FALSE(r.response.statuses[0].current_limit);
    EXPECT_EQ(r.response.statuses[0].limit_remaining, 0u);
    EXPECT_TRUE(r.response.headers.empty());
  }
}

TEST_F(ServiceTest, UnlimitedAnswersMaxRemainingWithoutTouchingTheStore) {
  const auto before = store.stats().keys;
  for (int i = 0; i < 5; ++i) {
    const Result r = one({{"path", "/static/app.js"}});
    EXPECT_EQ(r.response.statuses[0].code, Code::kOk);
    EXPECT_EQ(r.response.statuses[0].limit_remaining, kMax);
    EXPECT_FALSE(r.response.statuses[0].current_limit);
  }
  EXPECT_EQ(store.stats().keys, before);
}

TEST_F(ServiceTest, TheLimitComesFromTheNodeTheLastEntryMatched) {
  auto user = [&](std::string_view plan, std::string_view id) {
    return one({{"tenant", "acme"}, {"plan", plan}, {"user", id}});
  };
  for (std::uint32_t remaining : {4u, 3u}) {
    const Result r = user("gold", "u1");
    ASSERT_TRUE(r.response.statuses[0].current_limit);
    EXPECT_EQ(r.response.statuses[0].current_limit->name, "per_user");
    EXPECT_EQ(r.response.statuses[0].limit_remaining, remaining);
  }
  // Another plan value is another counter (value-less middle level), as is another user.
  EXPECT_EQ(user("free", "u1").response.statuses[0].limit_remaining, 4u);
  EXPECT_EQ(user("gold", "u2").response.statuses[0].limit_remaining, 4u);
  // Stopping one level short matches a node without a limit.
  EXPECT_FALSE(one({{"tenant", "acme"}, {"plan", "gold"}}).response.statuses[0].current_limit);
}

TEST_F(ServiceTest, HitsAddendPerRequestAndPerDescriptor) {
  // The request's hits_addend applies to every descriptor; 0 means 1.
  EXPECT_EQ(one({{"tenant", "acme"}, {"plan", "p"}, {"user", "h"}}, 3)
                .response.statuses[0]
                .limit_remaining,
            2u);
  // A descriptor's own hits_addend wins, 0 included: a peek that consumes nothing.
  Descriptor peek{{{"tenant", "acme"}, {"plan", "p"}, {"user", "h"}}};
  peek.hits_addend = 0;
  EXPECT_EQ(call("edge", {peek}, 3).response.statuses[0].limit_remaining, 2u);
  EXPECT_EQ(call("edge", {peek}, 3).response.statuses[0].limit_remaining, 2u);
  Descriptor two = peek;
  two.hits_addend = 2;
  EXPECT_EQ(call("edge", {two}, 3).response.statuses[0].limit_remaining, 0u);
  // More hits than remain: over limit.
  EXPECT_EQ(call("edge", {two}).response.statuses[0].code, Code::kOverLimit);
}

TEST_F(ServiceTest, ARequestsOwnLimitOverridesTheConfig) {
  Descriptor d{{{"path", "/login"}}};
  d.limit = LimitOverride{1, Unit::kHour};
  const Result first = call("edge", {d});
  ASSERT_TRUE(first.response.statuses[0].current_limit);
  EXPECT_EQ(first.response.statuses[0].current_limit->requests_per_unit, 1u);
  EXPECT_EQ(first.response.statuses[0].current_limit->unit, Unit::kHour);
  EXPECT_EQ(first.response.statuses[0].limit_remaining, 0u);
  EXPECT_EQ(call("edge", {d}).response.statuses[0].code, Code::kOverLimit);
  // An override unit of UNKNOWN is refused.
  d.limit = LimitOverride{1, Unit::kUnknown};
  const Result bad = call("edge", {d});
  ASSERT_TRUE(bad.error);
  EXPECT_THAT(bad.error->message, ::testing::HasSubstr("descriptors[0].limit.unit"));
}

TEST_F(ServiceTest, AnOverrideInAnotherUnitCountsApartFromTheConfiguredLimit) {
  for (int i = 0; i < 3; ++i) one({{"remote_address", "o"}});  // 3 per minute: spent
  Descriptor d{{{"remote_address", "o"}}};
  d.limit = LimitOverride{10, Unit::kHour};
  EXPECT_EQ(call("edge", {d}).response.statuses[0].limit_remaining, 9u);
  EXPECT_EQ(one({{"remote_address", "o"}}).response.overall_code, Code::kOverLimit);
}

TEST_F(ServiceTest, AnAbsurdHitsAddendIsOverLimitAndDoesNotWrapTheStatistics) {
  Descriptor d{{{"remote_address", "huge"}}};
  d.hits_addend = std::uint64_t{1} << 63;
  const Result r = call("edge", {d});
  EXPECT_EQ(r.response.overall_code, Code::kOverLimit);
  std::string metrics;
  service->append_metrics(metrics);
  EXPECT_THAT(
      metrics,
      ::testing::HasSubstr(
          R"(floodgate_rls_over_limit_total{domain="edge",descriptor="edge.remote_address"} 1099511627773)"));
}

TEST_F(ServiceTest, ShadowModeAnswersOkAndCountsWhatWouldHaveBeenLimited) {
  EXPECT_EQ(one({{"shadow", "a"}}).response.statuses[0].limit_remaining, 0u);
  for (int i = 0; i < 3; ++i) {
    const Result r = one({{"shadow", "a"}});
    EXPECT_EQ(r.response.overall_code, Code::kOk);
    EXPECT_EQ(r.response.statuses[0].code, Code::kOk);
    EXPECT_EQ(r.response.statuses[0].limit_remaining, 0u);
  }
  std::string metrics;
  service->append_metrics(metrics);
  EXPECT_THAT(metrics,
              ::testing::HasSubstr(
                  R"(floodgate_rls_shadow_mode_total{domain="edge",descriptor="edge.shadow"} 3)"));
  EXPECT_THAT(metrics,
              ::testing::HasSubstr(
                  R"(floodgate_rls_total_hits_total{domain="edge",descriptor="edge.shadow"} 4)"));
}

TEST_F(ServiceTest, GlobalShadowModeTurnsTheOverallCodeOk) {
  auto o = options;
  o.global_shadow_mode = true;
  reopen(o);
  one({{"banned", "x"}});
  const Result r = one({{"banned", "x"}});
  EXPECT_EQ(r.response.overall_code, Code::kOk);
  EXPECT_EQ(r.response.statuses[0].code, Code::kOverLimit);  // the descriptor still tells
}

TEST_F(ServiceTest, QuotaModeIsOverOnlyWhenEveryQuotaDescriptorIs) {
  auto both = [&] {
    return call("edge", {Descriptor{{{"quota_a", "1"}}}, Descriptor{{{"quota_b", "1"}}}});
  };
  EXPECT_EQ(both().response.overall_code, Code::kOk);
  // quota_a alone spent: one of two quota descriptors over, so the request passes.
  one({{"quota_a", "1"}});
  EXPECT_EQ(one({{"quota_a", "1"}}).response.overall_code, Code::kOverLimit);  // all (one) over
  const Result r = call("edge", {Descriptor{{{"quota_a", "1"}}}, Descriptor{{{"quota_b", "2"}}}});
  EXPECT_EQ(r.response.statuses[0].code, Code::kOverLimit);
  EXPECT_EQ(r.response.overall_code, Code::kOk);
  EXPECT_EQ(both().response.overall_code, Code::kOverLimit);
}

TEST_F(ServiceTest, ZeroRequestsPerUnitIsAlwaysOverLimit) {
  const Result r = one({{"banned", "x"}});
  EXPECT_EQ(r.response.overall_code, Code::kOverLimit);
  ASSERT_TRUE(r.response.statuses[0].current_limit);
  EXPECT_EQ(r.response.statuses[0].current_limit->requests_per_unit, 0u);
  EXPECT_EQ(r.response.statuses[0].duration_until_reset, 50s);
}

TEST_F(ServiceTest, AReplacedLimitIsNotApplied) {
  // `specific` replaces `generic`: only its limit of 2 counts.
  auto both = [&] {
    return call("edge", {Descriptor{{{"generic", "g"}}}, Descriptor{{{"specific", "s"}}}});
  };
  EXPECT_FALSE(both().response.statuses[0].current_limit);
  EXPECT_EQ(both().response.statuses[1].limit_remaining, 0u);
  const Result r = both();
  EXPECT_EQ(r.response.overall_code, Code::kOverLimit);
  EXPECT_EQ(r.response.statuses[0].code, Code::kOk);
  // Alone, generic applies.
  EXPECT_EQ(one({{"generic", "g"}}).response.statuses[0].limit_remaining, 99u);
}

TEST_F(ServiceTest, HeadersDescribeTheDescriptorClosestToItsLimit) {
  const Result r = call("edge", {Descriptor{{{"generic", "h"}}}, Descriptor{{{"path", "/login"}}},
                                 Descriptor{{{"path", "/static/x"}}}});
  ASSERT_EQ(r.response.headers.size(), 3u);
  EXPECT_EQ(r.response.headers[0].name, "RateLimit-Limit");
  EXPECT_EQ(r.response.headers[0].value, "2");
  EXPECT_EQ(r.response.headers[1].name, "RateLimit-Remaining");
  EXPECT_EQ(r.response.headers[1].value, "1");
  EXPECT_EQ(r.response.headers[2].name, "RateLimit-Reset");
  EXPECT_EQ(r.response.headers[2].value, "1");

  auto o = options;
  o.response_headers = false;
  o.draft_headers = true;
  reopen(o);
  const Result draft = one({{"tenant", "acme"}, {"plan", "p"}, {"user", "d"}});
  ASSERT_EQ(draft.response.headers.size(), 2u);
  EXPECT_EQ(draft.response.headers[0].name, "RateLimit-Policy");
  EXPECT_EQ(draft.response.headers[0].value, "\"per_user\";q=5;w=3600");
  EXPECT_EQ(draft.response.headers[1].name, "RateLimit");
  EXPECT_EQ(draft.response.headers[1].value, "\"per_user\";r=4;t=2810");
}

TEST_F(ServiceTest, TheOverLimitCacheAnswersUntilTheWindowEnds) {
  for (int i = 0; i < 4; ++i) one({{"remote_address", "c"}});  // 3 allowed, 1 over: cached
  const auto keys = store.stats().keys;
  const Result cached = one({{"remote_address", "c"}});
  EXPECT_EQ(cached.response.statuses[0].code, Code::kOverLimit);
  EXPECT_EQ(cached.response.statuses[0].duration_until_reset, 50s);
  std::string metrics;
  service->append_metrics(metrics);
  EXPECT_THAT(
      metrics,
      ::testing::HasSubstr(
          R"(floodgate_rls_over_limit_with_local_cache_total{domain="edge",descriptor="edge.remote_address"} 1)"));
  EXPECT_EQ(store.stats().keys, keys);
  clock.advance(50s);
  EXPECT_EQ(one({{"remote_address", "c"}}).response.statuses[0].code, Code::kOk);
}

TEST_F(ServiceTest, OverLimitCacheIsBoundedAndForgetsOtherLimits) {
  OverLimitCache cache(32);
  const Policy a = *Policy::fixed_window(10, 60s);
  const Policy b = *Policy::fixed_window(20, 60s);
  const Micros now{1'000'000};
  for (int i = 0; i < 1000; ++i) {
    cache.insert("k" + std::to_string(i), a, now + Micros{i + 1}, now);
  }
  EXPECT_LE(cache.size(), 32u);
  cache.insert("x", a, now + 10s, now);
  EXPECT_TRUE(cache.over_until("x", a, now));
  EXPECT_FALSE(cache.over_until("x", b, now));  // a reloaded limit: not known to be over
  cache.insert("y", a, now + 10s, now);
  EXPECT_FALSE(cache.over_until("y", a, now + 10s));  // expired
  OverLimitCache off(0);
  off.insert("x", a, now + 10s, now);
  EXPECT_FALSE(off.over_until("x", a, now));
}

TEST_F(ServiceTest, BadRequestsNameTheField) {
  auto message = [](const Result& r) { return r.error ? r.error->message : std::string("none"); };
  EXPECT_THAT(message(call("", {Descriptor{{{"a", "b"}}}})), ::testing::HasSubstr("domain"));
  EXPECT_THAT(message(call("edge", {})), ::testing::HasSubstr("descriptors"));
  EXPECT_THAT(message(call("edge", {Descriptor{}})),
              ::testing::HasSubstr("descriptors[0].entries"));
  EXPECT_THAT(
      message(call("edge", {Descriptor{{{"a", "b"}}}, Descriptor{{{"a", "b"}, {"", "v"}}}})),
      ::testing::HasSubstr("descriptors[1].entries[1].key"));
  std::vector<Descriptor> many(65, Descriptor{{{"a", "b"}}});
  EXPECT_THAT(message(call("edge", many)), ::testing::HasSubstr("at most 64"));
}

TEST_F(ServiceTest, AReloadedConfigAppliesToTheNextCall) {
  EXPECT_EQ(one({{"remote_address", "r"}}).response.statuses[0].limit_remaining, 2u);
  service->set_config(parse_config(R"(
domain: edge
descriptors:
  - key: remote_address
    rate_limit: {unit: minute, requests_per_unit: 10}
)"));
  EXPECT_EQ(one({{"remote_address", "r"}}).response.statuses[0].limit_remaining, 8u);
  EXPECT_FALSE(one({{"path", "/login"}}).response.statuses[0].current_limit);
}

TEST_F(ServiceTest, NearLimitAndOverLimitStatsFollowEnvoyRatelimit) {
  // Limit 3, near ratio 0.8: threshold floor(2.4) = 2. Hits 1,2 within; 3 within and near; 4 over.
  for (int i = 0; i < 4; ++i) one({{"remote_address", "s"}});
  std::string metrics;
  service->append_metrics(metrics);
  auto value = [&](std::string_view series) {
    const std::string needle =
        std::string(series) + R"({domain="edge",descriptor="edge.remote_address"} )";
    const auto at = metrics.find(needle);
    return at == std::string::npos
               ? std::string("absent")
               : metrics.substr(at + needle.size(), metrics.find('\n', at) - at - needle.size());
  };
  EXPECT_EQ(value("floodgate_rls_total_hits_total"), "4");
  EXPECT_EQ(value("floodgate_rls_within_limit_total"), "3");
  EXPECT_EQ(value("floodgate_rls_near_limit_total"), "1");
  EXPECT_EQ(value("floodgate_rls_over_limit_total"), "1");
}

// RESPONSE_DYNAMIC_METADATA, as envoyproxy/ratelimit's ratelimitToMetadata() builds it: the
// domain, each descriptor's entries (and its own limit and hits), the request's hits, and the
// `metadata` of the limits that passed, merged in request order with the first value winning.
TEST_F(ServiceTest, DynamicMetadataCarriesTheRequestAndThePassedLimitsMetadata) {
  EXPECT_TRUE(one({{"remote_address", "10.0.0.9"}}).response.dynamic_metadata.empty());  // off

  ServiceOptions o;
  o.clock = &clock;
  o.response_dynamic_metadata = true;
  Service meta(limiter, o, parse_config(R"(
domain: meta
descriptors:
  - key: service
    value: one
    rate_limit: {unit: minute, requests_per_unit: 1}
    metadata: {name: service_1, owner: {team: a, oncall: x}}
  - key: service
    value: two
    rate_limit: {unit: minute, requests_per_unit: 5}
    metadata: {name: service_2, tier: 3, owner: {team: b, pager: p1}}
  - key: service
    value: quiet
    metadata: {name: no_limit}
  - key: free
    rate_limit: {unlimited: true}
    metadata: {name: unlimited}
)"));
  auto run = [&](std::vector<Descriptor> descriptors, std::uint32_t hits = 0) {
    struct Sync final : Call {
      void done() override {}
    } c;
    c.request.domain = "meta";
    c.request.descriptors = std::move(descriptors);
    c.request.hits_addend = hits;
    meta.should_rate_limit(c);
    return boost::json::parse(c.response.dynamic_metadata);
  };
  const Descriptor one_d{{{"service", "one"}}};
  Descriptor two_d{{{"service", "two"}}};
  two_d.hits_addend = 2;

  // Both pass: service_1's name wins, the owners merge member by member.
  EXPECT_EQ(run({one_d, two_d}), boost::json::parse(R"({
    "domain": "meta",
    "descriptors": [{"entries": ["service=one"]}, {"entries": ["service=two"], "hitsAddend": 2}],
    "metadata": {"name": "service_1", "tier": 3, "owner": {"team": "a", "oncall": "x", "pager": "p1"}}
  })"));
  // `one` is now over its limit: only service_2's metadata.
  EXPECT_EQ(run({one_d, two_d}).at("metadata"), boost::json::parse(R"({
    "name": "service_2", "tier": 3, "owner": {"team": "b", "pager": "p1"}
  })"));
  // No limit, unlimited, or the request's own limit: nothing under "metadata"; the request's
  // hits_addend and the override as protobuf's text format prints it.
  Descriptor own{{{"service", "two"}}};
  own.limit = LimitOverride{42, Unit::kHour};
  const boost::json::value none =
      run({Descriptor{{{"service", "quiet"}}}, Descriptor{{{"free", "x"}}}, own}, 4);
  EXPECT_EQ(none, boost::json::parse(R"({
    "domain": "meta",
    "descriptors": [{"entries": ["service=quiet"]}, {"entries": ["free=x"]},
                    {"entries": ["service=two"], "limit": "requests_per_unit:42 unit:HOUR"}],
    "hitsAddend": 4
  })"));
}

}  // namespace
}  // namespace floodgate::rls
