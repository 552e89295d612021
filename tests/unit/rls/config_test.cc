// envoyproxy/ratelimit configs: its own files (tests/data/envoy-ratelimit-configs, README there)
// load unchanged, its bad ones are refused at the right line, and what it accepts or refuses in
// between is accepted or refused here too.
#include "rls/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <variant>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace floodgate::rls {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCorpus = FLOODGATE_RLS_CONFIGS;

Config good(const std::string& text, const LoadOptions& options = {}) {
  auto loaded = load_config_text(text, "test.yaml", options);
  if (auto* errors = std::get_if<LoadErrors>(&loaded)) {
    ADD_FAILURE() << errors->messages.front();
    return {};
  }
  return std::get<Config>(std::move(loaded));
}

// The first error for `text`, or "" when it loads.
std::string error(const std::string& text) {
  auto loaded = load_config_text(text, "test.yaml");
  if (auto* e = std::get_if<LoadErrors>(&loaded)) return e->messages.front();
  return "";
}

std::string first_error(const std::vector<std::string>& paths) {
  auto loaded = load_config(paths);
  if (auto* e = std::get_if<LoadErrors>(&loaded)) return e->messages.front();
  return "";
}

const RateLimit& limit_at(const Config& c, std::string_view domain,
                          std::initializer_list<std::string_view> path) {
  const DescriptorNode* node = &c.find(domain)->root;
  for (auto lookup : path) {
    node = node->find(lookup);
    if (!node) throw std::runtime_error("no node " + std::string(lookup));
  }
  return node->rate_limit.value();
}

TEST(RlsUnits, NamesAndDurationsAreEnvoyProxyRatelimits) {
  EXPECT_EQ(parse_unit("second"), Unit::kSecond);
  EXPECT_EQ(parse_unit("Minute"), Unit::kMinute);
  EXPECT_EQ(parse_unit("HOUR"), Unit::kHour);
  EXPECT_EQ(parse_unit("day"), Unit::kDay);
  EXPECT_EQ(parse_unit("week"), Unit::kWeek);
  EXPECT_EQ(parse_unit("month"), Unit::kMonth);
  EXPECT_EQ(parse_unit("year"), Unit::kYear);
  EXPECT_EQ(parse_unit("unknown"), std::nullopt);
  EXPECT_EQ(parse_unit("fortnight"), std::nullopt);
  EXPECT_EQ(static_cast<int>(Unit::kWeek), 7);
  EXPECT_EQ(unit_duration(Unit::kSecond), 1s);
  EXPECT_EQ(unit_duration(Unit::kMinute), 60s);
  EXPECT_EQ(unit_duration(Unit::kHour), 3600s);
  EXPECT_EQ(unit_duration(Unit::kDay), 86400s);
  EXPECT_EQ(unit_duration(Unit::kWeek), 7 * 86400s);
  EXPECT_EQ(unit_duration(Unit::kMonth), 30 * 86400s);
  EXPECT_EQ(unit_duration(Unit::kYear), 365 * 86400s);
  EXPECT_EQ(to_string(Unit::kMonth), "MONTH");
}

TEST(RlsConfig, EveryGoodCorpusDirectoryLoads) {
  // One directory per domain set: every test/config fixture uses the domain test-domain.
  for (const char* dir : {"main", "basic", "wildcard", "shadow", "share", "example4-nomatch"}) {
    auto loaded = load_config(kCorpus + "/" + dir);
    ASSERT_TRUE(std::holds_alternative<Config>(loaded))
        << dir << ": " << std::get<LoadErrors>(loaded).messages.front();
    const Config& c = std::get<Config>(loaded);
    EXPECT_GT(c.limit_count(), 0u) << dir;
    EXPECT_THAT(c.warnings, ::testing::IsEmpty()) << dir;
  }
}

TEST(RlsConfig, EveryGoodCorpusFileLoadsAlone) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kCorpus)) {
    const fs::path& p = entry.path();
    if (p.extension() != ".yaml" || p.parent_path().filename() == "bad") continue;
    ++files;
    auto loaded = load_config(p.string());
    EXPECT_TRUE(std::holds_alternative<Config>(loaded))
        << p << ": " << std::get<LoadErrors>(loaded).messages.front();
  }
  EXPECT_EQ(files, 26);
}

TEST(RlsConfig, MainHoldsEighteenDomains) {
  auto loaded = load_config(kCorpus + "/main");
  const Config& c = std::get<Config>(loaded);
  EXPECT_EQ(c.domains.size(), 18u);
  EXPECT_EQ(c.files.size(), 18u);
  const RateLimit& banned = limit_at(c, "rl", {"foo", "bar_banned"});
  EXPECT_EQ(banned.requests_per_unit, 0u);
  EXPECT_EQ(banned.name, "banned_limit");
  EXPECT_FALSE(banned.policy) << "0 per unit admits nothing: no counter to keep";
  const RateLimit& account = limit_at(c, "rl", {"category_account"});
  EXPECT_THAT(account.replaces, ::testing::ElementsAre("bkthomps", "fake_name"));
  EXPECT_TRUE(account.name.empty()) << "replaces without a name is fine";
  const RateLimit& quota = limit_at(c, "rl", {"service_service_1"});
  EXPECT_TRUE(quota.quota_mode);
  EXPECT_EQ(c.find("rl")->root.find("service_service_1")->metadata_json,
            R"({"service_with_quota":{"name":"service_1"}})");
}

struct BadFile {
  const char* file;
  const char* where;  // file:line:column
  const char* problem;
};

TEST(RlsConfig, EveryBadCorpusFileIsRefusedAtItsLine) {
  const BadFile bad[] = {
      {"bad_limit_unit.yaml", ":6:13: ", "invalid rate limit unit 'foo'"},
      {"duplicate_key.yaml",
       ":6:10: ", "duplicate descriptor composite key 'test-domain.key1_value1'"},
      {"empty_domain.yaml", ":1:1: ", "config file cannot have empty domain"},
      {"empty_key.yaml", ":3:5: ", "descriptor has empty key"},
      {"misspelled_key.yaml", ":5:5: ", "config error, unknown key 'ratelimit'"},
      {"misspelled_key2.yaml", ":7:7: ", "config error, unknown key 'requestsperunit'"},
      {"non_map_list.yaml",
       ":3:5: ", "config error, yaml file contains list of type other than map: a"},
      {"non_string_key.yaml", ":1:1: ", "config error, key is not of type string: 0.25"},
      {"replaces_empty.yaml", ":10:15: ", "should not have an empty replaces entry"},
      {"replaces_self.yaml", ":10:21: ", "replaces should not contain name of same descriptor"},
      {"unlimited_with_unit.yaml", ":6:13: ", "should not specify rate limit unit when unlimited"},
      {"bad_yaml.yaml", ":1:1: ", "error loading config file"},
  };
  for (const auto& b : bad) {
    const std::string path = kCorpus + "/bad/" + b.file;
    const std::string message = first_error({path});
    EXPECT_THAT(message, StartsWith(path + b.where)) << message;
    EXPECT_THAT(message, HasSubstr(b.problem)) << message;
  }
  EXPECT_EQ(fs::directory_iterator(kCorpus + "/bad") == fs::directory_iterator(), false);
  EXPECT_EQ(std::distance(fs::directory_iterator(kCorpus + "/bad"), fs::directory_iterator()),
            std::ssize(bad) + 1);  // + duplicate_domain.yaml, below
}

TEST(RlsConfig, ADomainGivenTwiceIsRefusedInTheSecondFile) {
  // duplicate_domain.yaml is fine alone; next to another test-domain file it is refused.
  EXPECT_EQ(first_error({kCorpus + "/bad/duplicate_domain.yaml"}), "");
  const std::string message =
      first_error({kCorpus + "/basic/basic_config.yaml", kCorpus + "/bad/duplicate_domain.yaml"});
  EXPECT_THAT(message, StartsWith(kCorpus + "/bad/duplicate_domain.yaml:1:9: "));
  EXPECT_THAT(message, HasSubstr("duplicate domain 'test-domain' in config file"));
}

TEST(RlsConfig, MergedDomainsAddTheirDescriptorsButNotTwiceTheSameKey) {
  const std::string key1 = kCorpus + "/validate-only/merge_domain_key1.yaml";
  const std::string key2 = kCorpus + "/validate-only/merge_domain_key2.yaml";
  EXPECT_THAT(first_error({key1, key2}), HasSubstr("duplicate domain 'test-domain'"));
  auto merged = load_config(std::vector<std::string>{key1, key2}, LoadOptions{true});
  ASSERT_TRUE(std::holds_alternative<Config>(merged));
  const Config& c = std::get<Config>(merged);
  EXPECT_EQ(limit_at(c, "test-domain", {"key1_value1"}).requests_per_unit, 10u);
  EXPECT_EQ(limit_at(c, "test-domain", {"key2_value2"}).requests_per_unit, 20u);
  EXPECT_EQ(c.find("test-domain")->files.size(), 2u);

  auto twice = load_config(std::vector<std::string>{key1, key1}, LoadOptions{true});
  ASSERT_TRUE(std::holds_alternative<LoadErrors>(twice));
  EXPECT_THAT(std::get<LoadErrors>(twice).messages.front(),
              HasSubstr("duplicate descriptor composite key 'test-domain.key1_value1'"));
}

TEST(RlsConfig, EachLimitCompilesToAnEpochAlignedFixedWindow) {
  const Config c = good(R"(
domain: d
descriptors:
  - {key: s, rate_limit: {unit: second, requests_per_unit: 5}}
  - {key: w, rate_limit: {unit: WEEK, requests_per_unit: 7}}
  - {key: y, rate_limit: {unit: Year, requests_per_unit: 4294967295}}
  - {key: u, rate_limit: {unlimited: true}}
  - {key: z, rate_limit: {unit: minute}}
)");
  EXPECT_EQ(limit_at(c, "d", {"s"}).policy, Policy::fixed_window(5, 1s).value());
  EXPECT_EQ(limit_at(c, "d", {"w"}).policy, Policy::fixed_window(7, 7 * 24h).value());
  EXPECT_EQ(limit_at(c, "d", {"y"}).policy, Policy::fixed_window(4294967295, 365 * 24h).value());
  EXPECT_EQ(limit_at(c, "d", {"u"}).policy, std::nullopt);
  EXPECT_TRUE(limit_at(c, "d", {"u"}).unlimited);
  EXPECT_EQ(limit_at(c, "d", {"z"}).requests_per_unit, 0u);  // missing: 0, as in Go
  EXPECT_EQ(limit_at(c, "d", {"z"}).policy, std::nullopt);
}

TEST(RlsConfig, TheFloodgateFieldChoosesAnotherAlgorithm) {
  const Config c = good(R"(
domain: d
descriptors:
  - key: a
    rate_limit: {unit: minute, requests_per_unit: 60, floodgate: token_bucket}
  - key: b
    rate_limit:
      unit: second
      requests_per_unit: 10
      floodgate: {algorithm: gcra, burst: 20}
  - key: c
    rate_limit:
      unit: hour
      requests_per_unit: 100
      floodgate: {algorithm: sliding_window_counter}
)");
  const RateLimit& a = limit_at(c, "d", {"a"});
  EXPECT_EQ(a.policy, Policy::token_bucket(60, 1.0).value());  // refills 60 per minute
  EXPECT_TRUE(a.floodgate_extension);
  EXPECT_EQ(limit_at(c, "d", {"b"}).policy, Policy::gcra(10, 1s, 20).value());
  EXPECT_EQ(limit_at(c, "d", {"c"}).policy, Policy::sliding_window_counter(100, 1h).value());

  EXPECT_THAT(
      error("domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: second\n"
            "      requests_per_unit: 1\n      floodgate: {algorithm: gcra, speed: 2}\n"),
      HasSubstr("test.yaml:7:36: descriptors[0].rate_limit.floodgate: unknown key 'speed'"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: second\n"
                    "      requests_per_unit: 1\n      floodgate: {algorithm: nope}\n"),
              HasSubstr("test.yaml:7:30: descriptors[0].rate_limit.floodgate.algorithm: must be "
                        "one of"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      unlimited: true\n"
                    "      floodgate: token_bucket\n"),
              HasSubstr("rate_limit.floodgate: has no effect on an unlimited limit"));
  // Only under rate_limit: elsewhere it is an unknown key, as envoyproxy/ratelimit says.
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    floodgate: token_bucket\n"),
              HasSubstr("test.yaml:4:5: descriptors[0]: config error, unknown key 'floodgate'"));
}

TEST(RlsConfig, ScalarsAreReadAsYamlV2ReadsThem) {
  const Config c = good(R"(
domain: d
descriptors:
  - key: a
    value: 123
    shadow_mode: yes
    rate_limit: {unit: minute, requests_per_unit: 0x10, unlimited: off}
  - key: b
    value: "1.5"
)");
  const RateLimit& a = limit_at(c, "d", {"a_123"});
  EXPECT_TRUE(a.shadow_mode);
  EXPECT_EQ(a.requests_per_unit, 16u);
  EXPECT_NE(c.find("d")->root.find("b_1.5"), nullptr);

  // envoyproxy/ratelimit refuses a plain fractional number anywhere but in metadata.
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: b\n    value: 1.5\n"),
              HasSubstr("test.yaml:4:12: descriptors[0].value: error checking config"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    shadow_mode: maybe\n"),
              HasSubstr("test.yaml:4:18: descriptors[0].shadow_mode: error loading config file: "
                        "must be true or false"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: day, "
                    "requests_per_unit: -1}\n"),
              HasSubstr("rate_limit.requests_per_unit: error loading config file: must be a whole "
                        "number from 0 to 4294967295, not -1"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: day, "
                    "requests_per_unit: 4294967296}\n"),
              HasSubstr("not 4294967296"));
  // The key check comes first: inside a mapping given as `key`, 'a' is an unknown key...
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: {a: b}\n"),
              HasSubstr("test.yaml:3:11: descriptors[0].key: config error, unknown key 'a'"));
  // ...and with known keys inside, the typed read refuses the mapping.
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: {unit: b}\n"),
              HasSubstr("test.yaml:3:10: descriptors[0].key: error loading config file: must be a "
                        "string, not a mapping"));
  EXPECT_THAT(error("domain: d\ndescriptors: nope\n"),
              HasSubstr("test.yaml:2:14: descriptors: error loading config file: must be a list"));
  EXPECT_THAT(error("- domain: d\n"), HasSubstr("test.yaml:1:1: error loading config file"));
  EXPECT_THAT(error(""), HasSubstr("config file cannot have empty domain"));
}

TEST(RlsConfig, UnknownKeysAreRefusedAtAnyDepthAndMisplacedKnownOnesIgnoredWithAWarning) {
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: day\n"
                    "      requests_per_unit: 1\n      replaces: [{name: x, nmae: y}]\n"),
              HasSubstr("test.yaml:7:28: descriptors[0].rate_limit.replaces[0]: config error, "
                        "unknown key 'nmae'"));
  EXPECT_THAT(error("domain: d\ntypo: 1\n"), HasSubstr("test.yaml:2:1: config error, unknown key "
                                                       "'typo'"));
  // Anything goes inside metadata.
  const Config meta = good(
      "domain: d\ndescriptors:\n  - key: a\n    metadata: {x: 1.5, y: [true, null], z: {w: "
      "'q'}}\n");
  EXPECT_EQ(meta.find("d")->root.find("a")->metadata_json,
            R"({"x":1.5,"y":[true,null],"z":{"w":"q"}})");
  // `unit` beside `key` passes envoyproxy/ratelimit's key check and is then ignored.
  const Config c = good("domain: d\ndescriptors:\n  - key: a\n    unit: day\n");
  EXPECT_FALSE(c.find("d")->root.find("a")->rate_limit);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_THAT(c.warnings[0], HasSubstr("test.yaml:4:5: descriptors[0].unit: is not read here"));
}

TEST(RlsConfig, ValidationRulesOfEnvoyProxyRatelimit) {
  // A unit is required unless unlimited; an unknown one is refused.
  EXPECT_THAT(
      error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 1}\n"),
      HasSubstr("test.yaml:4:17: descriptors[0].rate_limit.unit: invalid rate limit unit "
                "''"));
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: unknown}\n"),
              HasSubstr("invalid rate limit unit 'unknown'"));
  // unlimited refuses a unit but not requests_per_unit (ignored, with a warning).
  const Config c = good(
      "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, requests_per_unit: "
      "5}\n");
  EXPECT_TRUE(limit_at(c, "d", {"a"}).unlimited);
  EXPECT_EQ(c.warnings.size(), 1u);
  // share_threshold needs a wildcard.
  EXPECT_THAT(
      error("domain: d\ndescriptors:\n  - key: a\n    value: b\n    share_threshold: true\n"),
      HasSubstr("test.yaml:3:5: descriptors[0].share_threshold: share_threshold can only be "
                "used with wildcard values (containing '*'), but found key 'a_b'"));
  // The same key and value twice at one level, nested: the full composite key is named.
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n"
                    "      - key: b\n"),
              HasSubstr("test.yaml:6:14: descriptors[0].descriptors[1]: duplicate descriptor "
                        "composite key 'd.a.b'"));
  // `key` with no value and `key_value` are different nodes...
  good("domain: d\ndescriptors:\n  - key: a\n  - key: a\n    value: b\n");
  // ...but envoyproxy/ratelimit names nodes by "key_value", so these two collide.
  EXPECT_THAT(error("domain: d\ndescriptors:\n  - key: a_b\n  - key: a\n    value: b\n"),
              HasSubstr("duplicate descriptor composite key 'd.a_b'"));
}

TEST(RlsConfig, WildcardNodesKeepTheirConfigOrder) {
  const Config c = good(R"(
domain: d
descriptors:
  - {key: k, value: "a*", rate_limit: {unit: second, requests_per_unit: 1}}
  - {key: k, value: exact, rate_limit: {unit: second, requests_per_unit: 2}}
  - {key: k, value: "*b*c", rate_limit: {unit: second, requests_per_unit: 3}}
)");
  const DescriptorNode& root = c.find("d")->root;
  ASSERT_EQ(root.wildcards.size(), 2u);
  EXPECT_EQ(root.children[root.wildcards[0].child].lookup_key, "k_a*");
  EXPECT_THAT(root.wildcards[1].parts, ::testing::ElementsAre("k_", "b", "c"));
}

TEST(RlsConfig, ADirectoryIsReadRecursivelySkippingDotEntries) {
  std::string pattern = (fs::temp_directory_path() / "floodgate-rls-XXXXXX").string();
  const fs::path dir = ::mkdtemp(pattern.data());
  fs::create_directories(dir / "sub");
  fs::create_directories(dir / "..data");
  std::ofstream(dir / "a.yaml") << "domain: a\n";
  std::ofstream(dir / "sub" / "b.yml") << "domain: b\n";
  std::ofstream(dir / "..data" / "a.yaml") << "domain: a\n";  // a ConfigMap's real copy
  std::ofstream(dir / ".hidden.yaml") << "domain: a\n";
  std::ofstream(dir / "notes.txt") << "not yaml";
  auto loaded = load_config(dir.string());
  std::error_code ec;
  fs::remove_all(dir, ec);
  ASSERT_TRUE(std::holds_alternative<Config>(loaded))
      << std::get<LoadErrors>(loaded).messages.front();
  const Config& c = std::get<Config>(loaded);
  EXPECT_EQ(c.domains.size(), 2u);
  EXPECT_EQ(c.files.size(), 2u);
}

TEST(RlsConfig, DescribeListsDomainsAndLimits) {
  const Config c = good(R"(
domain: d
descriptors:
  - key: a
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 3, name: n, replaces: [{name: m}]}
)");
  EXPECT_EQ(
      describe(c),
      "domain d (test.yaml): 1 limit(s)\n  d.a: 3 per MINUTE name=n replaces=m shadow_mode\n");
}

// /rlconfig's text, as envoyproxy/ratelimit's Dump() prints it (its xDS provider test expects
// "foo.k1_v1: unit=MINUTE requests_per_unit=3, shadow_mode: false, quota_mode: false\n").
TEST(RlsConfig, DumpPrintsEveryLimitAsEnvoyRatelimitsRlconfig) {
  auto loaded = load_config_texts({{"b.yaml", R"(
domain: foo
descriptors:
  - key: k1
    value: v1
    rate_limit: {unit: minute, requests_per_unit: 3}
)"},
                                   {"a.yaml", R"(
domain: bar
descriptors:
  - key: client
    descriptors:
      - key: path
        value: /login
        shadow_mode: true
        quota_mode: true
        rate_limit: {unit: second, requests_per_unit: 10}
      - key: internal
        rate_limit: {unlimited: true}
  - key: no_limit_here
)"}});
  ASSERT_TRUE(std::holds_alternative<Config>(loaded))
      << std::get<LoadErrors>(loaded).messages.front();
  EXPECT_EQ(dump(std::get<Config>(loaded)),
            "bar.client.path_/login: unit=SECOND requests_per_unit=10, shadow_mode: true, "
            "quota_mode: true\n"
            "bar.client.internal: unit=UNKNOWN requests_per_unit=0, shadow_mode: false, "
            "quota_mode: false\n"
            "foo.k1_v1: unit=MINUTE requests_per_unit=3, shadow_mode: false, quota_mode: false\n");
  EXPECT_EQ(dump(Config{}), "");
}

}  // namespace
}  // namespace floodgate::rls
