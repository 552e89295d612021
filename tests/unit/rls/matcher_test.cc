// The descriptor lookup, case by case as envoyproxy/ratelimit's own config tests check it
// (test/config/config_test.go), on its own fixtures (tests/data/envoy-ratelimit-configs).
#include "rls/matcher.h"

#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace floodgate::rls {
namespace {

using namespace std::chrono_literals;

const std::string kCorpus = FLOODGATE_RLS_CONFIGS;

Config load(const std::string& relative) {
  auto loaded = load_config(kCorpus + "/" + relative);
  if (auto* e = std::get_if<LoadErrors>(&loaded)) {
    ADD_FAILURE() << e->messages.front();
    return {};
  }
  return std::get<Config>(std::move(loaded));
}

Config parse(const std::string& text) {
  auto loaded = load_config_text(text, "test.yaml");
  if (auto* e = std::get_if<LoadErrors>(&loaded)) {
    ADD_FAILURE() << e->messages.front();
    return {};
  }
  return std::get<Config>(std::move(loaded));
}

Descriptor entries(std::initializer_list<Entry> list) { return Descriptor{list, std::nullopt}; }

// The requests_per_unit that applies, or -1 when no limit does.
std::int64_t rpu(const Match& m) {
  return m.limit() ? std::int64_t{m.limit()->requests_per_unit} : -1;
}

class BasicConfig : public ::testing::Test {
 protected:
  const Config config = load("basic/basic_config.yaml");
  Match get(std::initializer_list<Entry> list) {
    return match(config, "test-domain", entries(list));
  }
};

TEST_F(BasicConfig, AnUnknownDomainOrAnEmptyDescriptorHasNoLimit) {
  EXPECT_EQ(match(config, "foo_domain", entries({{"key2", "x"}})).limit(), nullptr);
  EXPECT_EQ(get({}).limit(), nullptr);
  // Even a request's own limit needs a known domain.
  Descriptor d = entries({{"key2", "x"}});
  d.limit = LimitOverride{10, Unit::kDay};
  EXPECT_EQ(match(config, "foo_domain", d).limit(), nullptr);
}

TEST_F(BasicConfig, ALevelWithoutLimitOrChildrenMatchesNothing) {
  EXPECT_EQ(get({{"key1", "something"}}).limit(), nullptr);  // no key1 without value
  EXPECT_EQ(get({{"key1", "value1"}}).limit(), nullptr);     // no limit at that level
  // key2 has no children: the walk stops before the last entry.
  EXPECT_EQ(get({{"key2", "value2"}, {"subkey", "subvalue"}}).limit(), nullptr);
  // key5_value5 has a limit, but the last entry matches nothing below it.
  EXPECT_EQ(get({{"key5", "value5"}, {"subkey5", "subvalue"}}).limit(), nullptr);
  // key2_value3 is listed without a limit: it allows everything, the value-less key2 does not
  // apply.
  EXPECT_EQ(get({{"key2", "value3"}}).limit(), nullptr);
}

TEST_F(BasicConfig, TheExactValueWinsOverTheValueLessKey) {
  const Match sub = get({{"key1", "value1"}, {"subkey1", "something"}});
  EXPECT_EQ(rpu(sub), 5);
  EXPECT_EQ(sub.limit()->unit, Unit::kSecond);
  EXPECT_EQ(sub.stats_key, "test-domain.key1_value1.subkey1");
  EXPECT_EQ(sub.storage_key, "test-domain_key1_value1_subkey1_something_");
  EXPECT_EQ(sub.limit()->policy, Policy::fixed_window(5, 1s).value());

  const Match exact = get({{"key1", "value1"}, {"subkey1", "subvalue1"}});
  EXPECT_EQ(rpu(exact), 10);
  EXPECT_EQ(exact.stats_key, "test-domain.key1_value1.subkey1_subvalue1");

  EXPECT_EQ(rpu(get({{"key2", "something"}})), 20);
  EXPECT_EQ(get({{"key2", "something"}}).stats_key, "test-domain.key2");
  EXPECT_EQ(rpu(get({{"key2", "value2"}})), 30);
  EXPECT_EQ(get({{"key2", "value2"}}).stats_key, "test-domain.key2_value2");
  EXPECT_EQ(rpu(get({{"key3", "foo"}})), 1);
  EXPECT_EQ(get({{"key3", "foo"}}).limit()->unit, Unit::kHour);
  EXPECT_EQ(get({{"key4", "foo"}}).limit()->name, "key4_rate_limit");
  EXPECT_EQ(get({{"key4", "foo"}}).limit()->unit, Unit::kDay);
}

TEST_F(BasicConfig, AValueLessKeyCountsEachValueApart) {
  const Match a = get({{"key2", "alice"}});
  const Match b = get({{"key2", "bob"}});
  EXPECT_EQ(a.limit(), b.limit());                      // the same limit...
  EXPECT_EQ(a.storage_key, "test-domain_key2_alice_");  // ...two counters
  EXPECT_EQ(b.storage_key, "test-domain_key2_bob_");
  EXPECT_EQ(a.stats_key, b.stats_key);
}

TEST_F(BasicConfig, UnlimitedAndDetailedMetric) {
  const Match six = get({{"key6", "foo"}});
  ASSERT_NE(six.limit(), nullptr);
  EXPECT_TRUE(six.limit()->unlimited);
  EXPECT_FALSE(six.limit()->policy);
  // detailed_metric: the statistics carry the request's value.
  EXPECT_EQ(rpu(get({{"key7", "unspecified_value"}})), 70);
  EXPECT_EQ(get({{"key7", "unspecified_value"}}).stats_key, "test-domain.key7_unspecified_value");
  EXPECT_EQ(get({{"key7", "another_value"}}).stats_key, "test-domain.key7_another_value");
}

TEST_F(BasicConfig, ARequestsOwnLimitReplacesTheConfigs) {
  Descriptor d = entries({{"key1", "value1"}, {"subkey1", "something"}});
  d.limit = LimitOverride{10, Unit::kDay};
  const Match m = match(config, "test-domain", d);
  ASSERT_NE(m.limit(), nullptr);
  EXPECT_EQ(m.limit()->requests_per_unit, 10u);
  EXPECT_EQ(m.limit()->unit, Unit::kDay);
  EXPECT_FALSE(m.limit()->shadow_mode);
  EXPECT_EQ(m.limit()->policy, Policy::fixed_window(10, 24h).value());
  EXPECT_EQ(m.stats_key, "test-domain.key1_value1.subkey1_something");
  EXPECT_EQ(m.storage_key, "test-domain_key1_value1_subkey1_something_");
  // Even where the config has nothing.
  Descriptor other = entries({{"nowhere", "x"}, {"empty", ""}});
  other.limit = LimitOverride{42, Unit::kHour};
  EXPECT_EQ(rpu(match(config, "test-domain", other)), 42);
  EXPECT_EQ(match(config, "test-domain", other).stats_key, "test-domain.nowhere_x.empty");
  // A unit the store cannot count: no policy (envoyproxy/ratelimit fails such a request).
  other.limit = LimitOverride{42, Unit::kUnknown};
  EXPECT_FALSE(match(config, "test-domain", other).limit()->policy);
}

TEST(RlsMatcher, ShadowModeIsPerLimit) {
  const Config c = load("shadow/shadowmode_config.yaml");
  auto get = [&](std::initializer_list<Entry> list) {
    return match(c, "test-domain", entries(list));
  };
  EXPECT_FALSE(get({{"key1", "value1"}, {"subkey1", "something"}}).limit()->shadow_mode);
  EXPECT_TRUE(get({{"key1", "value1"}, {"subkey1", "subvalue1"}}).limit()->shadow_mode);
  EXPECT_TRUE(get({{"key2", "something"}}).limit()->shadow_mode);
  EXPECT_FALSE(get({{"key2", "value2"}}).limit()->shadow_mode);
  EXPECT_EQ(rpu(get({{"key2", "value2"}})), 30);
}

class WildcardConfig : public ::testing::Test {
 protected:
  const Config config = load("wildcard/wildcard.yaml");
  Match get(std::initializer_list<Entry> list) {
    return match(config, "test-domain", entries(list));
  }
};

TEST_F(WildcardConfig, ATrailingWildcardMatchesEveryValueWithItsPrefix) {
  const Match one = get({{"wild", "foo1"}});
  const Match two = get({{"wild", "foo2"}});
  ASSERT_NE(one.limit(), nullptr);
  EXPECT_EQ(one.limit(), two.limit());
  EXPECT_EQ(one.stats_key, "test-domain.wild_foo*");
  EXPECT_EQ(two.stats_key, "test-domain.wild_foo*");
  // Without share_threshold each value still has its own counter.
  EXPECT_EQ(one.storage_key, "test-domain_wild_foo1_");
  EXPECT_EQ(two.storage_key, "test-domain_wild_foo2_");
  EXPECT_EQ(rpu(get({{"wild", "foo"}})), 20);  // '*' matches nothing too
  EXPECT_EQ(get({{"wild", "bar"}}).limit(), nullptr);
  EXPECT_EQ(get({{"noWild", "foo1"}}).limit(), nullptr);  // no eager match without '*'
  EXPECT_EQ(get({{"noVal", "foo1"}}).stats_key, "test-domain.noVal");

  const Match nested = get({{"nestedWild", "val1"}, {"wild", "goo2"}});
  EXPECT_EQ(rpu(nested), 20);
  EXPECT_EQ(nested.stats_key, "test-domain.nestedWild_val1.wild_goo*");
}

TEST_F(WildcardConfig, MiddleAndSeveralWildcards) {
  EXPECT_EQ(get({{"midWild", "barab"}}).limit(), get({{"midWild", "bar123b"}}).limit());
  EXPECT_EQ(get({{"midWild", "barab"}}).stats_key, "test-domain.midWild_bar*b");
  EXPECT_EQ(rpu(get({{"midWild", "barb"}})), 20);
  EXPECT_EQ(get({{"midWild", "bara"}}).limit(), nullptr);
  EXPECT_EQ(get({{"midWild", "xbarb"}}).limit(), nullptr);

  EXPECT_EQ(rpu(get({{"multiWild", "foo123bar456baz"}})), 10);
  EXPECT_EQ(rpu(get({{"multiWild", "foobarbaz"}})), 10);
  EXPECT_EQ(get({{"multiWild", "foobarbaz"}}).stats_key, "test-domain.multiWild_foo*bar*baz");
  EXPECT_EQ(get({{"multiWild", "foo123baz"}}).limit(), nullptr);
  EXPECT_EQ(get({{"multiWild", "bar456baz"}}).limit(), nullptr);
}

TEST(RlsMatcher, WildcardMatchRules) {
  const std::vector<std::string> star_alone{"k_", ""};
  EXPECT_TRUE(wildcard_match(star_alone, "k_"));
  EXPECT_TRUE(wildcard_match(star_alone, "k_anything"));
  const std::vector<std::string> overlap{"k_ab", "ba"};  // "k_ab*ba"
  EXPECT_FALSE(wildcard_match(overlap, "k_aba"));  // prefix and suffix may not share characters
  EXPECT_TRUE(wildcard_match(overlap, "k_abba"));
  const std::vector<std::string> ordered{"k_", "x", "y", ""};  // "k_*x*y*"
  EXPECT_TRUE(wildcard_match(ordered, "k_1x2y3"));
  EXPECT_FALSE(wildcard_match(ordered, "k_1y2x3"));
}

TEST(RlsMatcher, PerLevelOrderIsExactThenWildcardsInConfigOrderThenTheValueLessKey) {
  const Config c = parse(R"(
domain: d
descriptors:
  - {key: k, rate_limit: {unit: second, requests_per_unit: 1}}
  - {key: k, value: "ab*", rate_limit: {unit: second, requests_per_unit: 2}}
  - {key: k, value: "a*", rate_limit: {unit: second, requests_per_unit: 3}}
  - {key: k, value: abc, rate_limit: {unit: second, requests_per_unit: 4}}
  - {key: k, value: "*", rate_limit: {unit: second, requests_per_unit: 5}}
)");
  auto get = [&](std::string_view v) { return rpu(match(c, "d", entries({{"k", v}}))); };
  EXPECT_EQ(get("abc"), 4);  // exact
  EXPECT_EQ(get("abd"), 2);  // the first wildcard in config order, not the longest
  EXPECT_EQ(get("axe"), 3);
  EXPECT_EQ(get("zzz"), 5);  // '*' alone matches any value...
  EXPECT_EQ(get(""), 5);     // ...even an empty one ("k_" matches "k_*")
}

TEST(RlsMatcher, TheLimitComesOnlyFromTheNodeTheLastEntryMatched) {
  const Config c = parse(R"(
domain: d
descriptors:
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 1}
    descriptors:
      - key: b
        descriptors:
          - key: c
            rate_limit: {unit: minute, requests_per_unit: 3}
)");
  auto get = [&](std::initializer_list<Entry> list) { return rpu(match(c, "d", entries(list))); };
  EXPECT_EQ(get({{"a", "1"}}), 1);
  EXPECT_EQ(get({{"a", "1"}, {"b", "2"}}), -1);  // b has no limit; a's does not carry down
  EXPECT_EQ(get({{"a", "1"}, {"b", "2"}, {"c", "3"}}), 3);
  EXPECT_EQ(get({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}), -1);  // deeper than the config
  EXPECT_EQ(get({{"a", "1"}, {"x", "2"}}), -1);
  EXPECT_EQ(match(c, "d", entries({{"a", "1"}, {"b", "2"}, {"c", "3"}})).storage_key,
            "d_a_1_b_2_c_3_");
}

TEST(RlsMatcher, ShareThresholdGivesAllValuesOfAWildcardOneCounter) {
  const Config c = load("share/share_threshold.yaml");
  auto get = [&](std::initializer_list<Entry> list) {
    return match(c, "test-domain", entries(list));
  };
  const Match pdf = get({{"files", "files/a.pdf"}});
  const Match csv = get({{"files", "files/b.csv"}});
  EXPECT_EQ(rpu(pdf), 100);
  EXPECT_EQ(pdf.storage_key, "test-domain_files_files/*_");
  EXPECT_EQ(csv.storage_key, pdf.storage_key);
  EXPECT_EQ(pdf.stats_key, "test-domain.files_files/*");

  EXPECT_EQ(get({{"route", "api/v1"}, {"method", "GET"}}).stats_key,
            "test-domain.route_api/*.method");
  EXPECT_EQ(get({{"service", "svc/user"}, {"endpoint", "get"}}).stats_key,
            "test-domain.service_svc/*.endpoint_get");
  const Match nested = get({{"nested", "parent"}, {"files", "nested/file1.txt"}});
  EXPECT_EQ(rpu(nested), 200);
  EXPECT_EQ(nested.stats_key, "test-domain.nested_parent.files_nested/*");
  EXPECT_EQ(nested.storage_key, "test-domain_nested_parent_files_nested/*_");
  EXPECT_EQ(get({{"files", "top/file1.txt"}, {"files", "nested/file1.txt"}}).stats_key,
            "test-domain.files_top/*.files_nested/*");
  const Match mixed = get({{"path", "path/foo"}, {"file", "file/doc1"}, {"type", "pdf"}});
  EXPECT_EQ(mixed.stats_key, "test-domain.path_path/*.file_file/*.type");
  EXPECT_EQ(mixed.storage_key, "test-domain_path_path/*_file_file/doc1_type_pdf_");
  // An exact value still wins over a share_threshold wildcard.
  EXPECT_EQ(rpu(get({{"file", "test1"}})), 50);
  EXPECT_EQ(rpu(get({{"file", "test2"}})), 100);
}

TEST(RlsMatcher, ValueToMetricPutsTheRequestValueInTheStatsKeyOnly) {
  const Config c = parse(R"(
domain: d
descriptors:
  - key: k1
    value_to_metric: true
    descriptors:
      - key: k2
        rate_limit: {unit: second, requests_per_unit: 1}
)");
  const Match m = match(c, "d", entries({{"k1", "A"}, {"k2", "foo"}}));
  EXPECT_EQ(m.stats_key, "d.k1_A.k2");
  EXPECT_EQ(m.storage_key, "d_k1_A_k2_foo_");
}

TEST(RlsMatcher, ReplacedLimitsAreMarkedAcrossTheDescriptorsOfARequest) {
  const Config c = load("main/example.yaml");
  const std::vector<Descriptor> request{
      entries({{"source_cluster", "proxy"}, {"destination_cluster", "bkthomps"}}),  // replaces
      entries({{"foo", "x"}, {"bar", "bkthomps"}}),  // named bkthomps
      entries({{"category", "account"}}),            // replaces bkthomps and fake_name
      entries({{"source_cluster", "proxy"}, {"destination_cluster", "fake"}}),  // fake_name
      entries({{"foo", "x"}, {"bar", "banned"}}),  // banned_limit, replaced by nothing here
  };
  const std::vector<Match> matches = match_all(c, "rl", request);
  ASSERT_EQ(matches.size(), 5u);
  EXPECT_FALSE(matches[0].replaced);
  EXPECT_TRUE(matches[1].replaced);
  EXPECT_FALSE(matches[2].replaced);
  EXPECT_TRUE(matches[3].replaced);
  EXPECT_FALSE(matches[4].replaced);
  EXPECT_EQ(rpu(matches[4]), 0);
  EXPECT_FALSE(matches[4].limit()->policy);

  // Alone, nothing is replaced.
  const std::vector<Match> alone = match_all(c, "rl", std::span(request).subspan(1, 1));
  EXPECT_FALSE(alone[0].replaced);
}

TEST(RlsMatcher, UnlimitedLimitsReplaceOthersButAreNeverReplaced) {
  const Config c = parse(R"(
domain: d
descriptors:
  - {key: free, rate_limit: {unlimited: true, name: free, replaces: [{name: paid}]}}
  - {key: paid, rate_limit: {unit: second, requests_per_unit: 1, name: paid, replaces: [{name: free}]}}
)");
  const std::vector<Descriptor> request{entries({{"free", "1"}}), entries({{"paid", "1"}})};
  const std::vector<Match> matches = match_all(c, "d", request);
  EXPECT_FALSE(matches[0].replaced);
  EXPECT_TRUE(matches[1].replaced);
}

TEST(RlsMatcher, ReadmeExamplesMatchAsDocumented) {
  const Config c = load("main");
  // Example 3 (edge_proxy_per_ip): a per-IP limit, and one address with requests_per_unit 0.
  const Match ip = match(c, "edge_proxy_per_ip", entries({{"remote_address", "10.0.0.1"}}));
  EXPECT_EQ(rpu(ip), 10);
  EXPECT_EQ(ip.storage_key, "edge_proxy_per_ip_remote_address_10.0.0.1_");
  EXPECT_EQ(rpu(match(c, "edge_proxy_per_ip", entries({{"remote_address", "50.0.0.5"}}))), 0);
  // Example 5 (internal): unlimited.
  EXPECT_TRUE(match(c, "internal", entries({{"ldap", "alice"}})).limit()->unlimited);
  EXPECT_EQ(rpu(match(c, "internal", entries({{"azure", "bob"}}))), 100);
}

}  // namespace
}  // namespace floodgate::rls
