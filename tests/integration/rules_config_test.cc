// Rules files end to end: `floodgate serve --config`, reload on SIGHUP and on change (the last good
// rules stay when a new file is bad), and `floodgate validate`. Files live in a fresh temp dir.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testlib/process.h"

namespace floodgate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string login_rule(int limit) {
  return "rules:\n  login:\n    algorithm: fixed_window\n    limit: " + std::to_string(limit) +
         "\n    window: 3600\n";
}

int status_of(Connection& c, std::string_view body) {
  auto r = c.request("POST", "/v1/check", body);
  return r ? r->status : -1;
}

constexpr std::string_view kLogin = R"({"rule":"login","key":"alice"})";

// A server on a rules file whose `login` rule admits 1; alice has used it up.
struct OneRuleServer {
  TempDir dir;
  std::string file = dir.write("rules.yaml", login_rule(1));
  Server server{{"--config", file}};
  Connection c{server.port()};

  OneRuleServer() {
    EXPECT_EQ(status_of(c, kLogin), 200);
    EXPECT_EQ(status_of(c, kLogin), 429);
  }
};

TEST(RulesConfig, ReloadsOnSighupAndKeepsTheLastGoodRulesWhenANewFileIsBad) {
  OneRuleServer s;
  auto& [dir, file, server, c] = s;

  dir.write("rules.yaml", login_rule(3));
  server.signal(SIGHUP);
  ASSERT_TRUE(server.wait_for_output("reloaded on SIGHUP: 1 rule(s)", 2s)) << server.output();
  EXPECT_EQ(status_of(c, kLogin), 200);  // 2 of 3 used
  EXPECT_EQ(status_of(c, kLogin), 200);
  EXPECT_EQ(status_of(c, kLogin), 429);

  dir.write("rules.yaml", "rules:\n  login:\n    algorithm: fixed_window\n    limit: -4\n");
  server.signal(SIGHUP);
  EXPECT_TRUE(server.wait_for_output("rules.yaml:4:12: rules.login.limit: must be at least 1", 2s))
      << server.output();
  EXPECT_EQ(status_of(c, R"({"rule":"login","key":"bob"})"), 200);  // the limit-3 rule still works
  // Counters live across reloads: 1 + 2 + 1 allowed, 2 denied.
  auto metrics = c.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(floodgate_rule_decisions_total{rule="login",outcome="allowed"} 4)"));
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(floodgate_rule_decisions_total{rule="login",outcome="denied"} 2)"));
}

TEST(RulesConfig, ReloadsWhenTheFileChanges) {
  OneRuleServer s;
  auto& [dir, file, server, c] = s;
  dir.write("rules.yaml", login_rule(2));
  int status = 429;
  for (int i = 0; i < 40 && status == 429; ++i) {  // the file is looked at once a second
    std::this_thread::sleep_for(100ms);
    status = status_of(c, R"({"rule":"login","key":"probe"})") == 200 ? status_of(c, kLogin) : 429;
  }
  EXPECT_EQ(status, 200);
}

TEST(RulesConfig, ABadFileStopsTheStart) {
  TempDir dir;
  const std::string file = dir.write("rules.yaml", "rules:\n  x: {algorithm: nope}\n");
  auto [status, out] = run_floodgate({"serve", "--port", "0", "--config", file});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("rules.yaml:2:18: rules.x.algorithm: must be one of"));
}

// The file's `settings`: below flags and environment, above the defaults; named by flag or by
// environment variable; checked as the flags are; in force from the start only.
TEST(RulesConfig, SettingsInTheFileApplyBelowFlagsAndEnvironment) {
  TempDir dir;
  fs::create_directories(dir.path() + "/srv/config");
  dir.write("srv/config/rl.yaml",
            "domain: d\ndescriptors:\n  - key: k\n"
            "    rate_limit: {unit: second, requests_per_unit: 1}\n");
  const std::string envoy = dir.path() + "/srv/config";
  const std::string file = dir.write("rules.yaml",
                                     "settings:\n"
                                     "  default_limit: 7\n"
                                     "  DEFAULT_WINDOW: 60\n"
                                     "  log-format: text\n"
                                     "  rls_config: " +
                                         envoy +
                                         "\n"
                                         "rules:\n"
                                         "  login: {algorithm: fixed_window}\n");
  auto limit_of = [](Server& server, std::string_view body) {
    Connection c(server.port());
    auto r = c.request("POST", "/v1/check", body);
    return r ? r->header("X-RateLimit-Limit") : "";
  };
  {
    Server server({"--config", file});
    // The rule and inline checks take the file's defaults.
    EXPECT_EQ(limit_of(server, kLogin), "7");
    EXPECT_EQ(limit_of(server, R"({"key":"k","algorithm":"fixed_window"})"), "7");
    EXPECT_THAT(server.output(), HasSubstr(" info settings: from " + file +
                                           ": default-limit, default-window, log-format, "
                                           "rls-config"));  // as text, from the file
    EXPECT_THAT(server.output(), HasSubstr("RLS config loaded: 1 domain(s)"));

    // A reload takes new rules, and says that settings wait for a restart.
    dir.write("rules.yaml", "settings:\n  default_limit: 9\nrules:\n  login: {algorithm: gcra}\n");
    server.signal(SIGHUP);
    EXPECT_TRUE(
        server.wait_for_output("its settings section changed; settings take effect at "
                               "the next start",
                               2s))
        << server.output();
    EXPECT_EQ(limit_of(server, R"({"rule":"login","key":"bob"})"), "7");
  }
  dir.write("rules.yaml",
            "settings:\n  default_limit: 9\n  log_format: text\n"
            "rules:\n  login: {algorithm: fixed_window}\n");
  {
    Server server({"--config", file, "--default-limit", "5"});  // a flag wins
    EXPECT_EQ(limit_of(server, kLogin), "5");
  }
  {
    Server server({"--config", file}, {"DEFAULT_LIMIT=6"});  // the environment wins
    EXPECT_EQ(limit_of(server, kLogin), "6");
  }
  {
    // envoyproxy/ratelimit's environment is environment too: RUNTIME_ROOT beats the file's
    // rls_config.
    dir.write("rules.yaml", "settings:\n  rls_config: /nonexistent\n  log_format: text\n");
    Server server({"--config", file}, {"RUNTIME_ROOT=" + dir.path(), "RUNTIME_SUBDIRECTORY=srv"});
    EXPECT_TRUE(server.wait_for_output("RLS config loaded: 1 domain(s)", 2s)) << server.output();
  }

  // Bad settings stop the start, naming the file, line, column and setting; validate says the same.
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"settings:\n  portt: 1\n", "rules.yaml:2:10: settings.portt: is not a setting"},
      {"settings:\n  store_timeout_ms: 0\n",
       "rules.yaml:2:21: settings.store_timeout_ms: --store-timeout-ms: Value 0 not in range"},
      {"settings:\n  failure_mode: sometimes\n", "rules.yaml:2:17: settings.failure_mode:"},
      {"settings:\n  config: other.yaml\n",
       "rules.yaml:2:11: settings.config: the rules file is named by --config or CONFIG_FILE"},
      {"settings:\n  admin_port: [1, 2]\n",
       "rules.yaml:2:15: settings.admin_port: must be a single value"},
      {"settings: 3\n", "rules.yaml:1:11: settings: must be a mapping"},
  };
  for (const Case& c : cases) {
    dir.write("rules.yaml", c.text);
    auto [status, out] = run_floodgate({"serve", "--port", "0", "--config", file});
    EXPECT_EQ(status, 2) << c.text;
    EXPECT_THAT(out, HasSubstr(c.message)) << c.text;
    auto [checked, printed] = run_floodgate({"validate", file});
    EXPECT_EQ(checked, 1) << c.text;
    EXPECT_THAT(printed, HasSubstr(c.message)) << c.text;
  }
  // validate checks the settings together, as serve would.
  dir.write("rules.yaml", "settings:\n  backend: redis-cluster\n  redis_url: redis://h:1\n");
  auto [status, out] = run_floodgate({"validate", file});
  EXPECT_EQ(status, 1);
  EXPECT_THAT(out, HasSubstr("rules.yaml: settings: REDIS_URL: BACKEND=redis-cluster needs"));
}

TEST(RulesConfig, ValidatePrintsTheRulesOrTheErrors) {
  TempDir dir;
  auto [ok_status, ok_out] =
      run_floodgate({"validate", FLOODGATE_SOURCE_DIR "/examples/rules.yaml"});
  EXPECT_EQ(ok_status, 0) << ok_out;
  EXPECT_THAT(ok_out, HasSubstr("ok, 3 rule(s)"));
  EXPECT_THAT(ok_out, HasSubstr("login: sliding_window_log(limit=5, window=60000000us)"));
  EXPECT_THAT(ok_out, HasSubstr("tier pro: token_bucket(capacity=100, refill_rate=10)"));

  const std::string bad =
      dir.write("bad.yaml", "rules:\n  a:\n    algorithm: gcra\n    burst: 0\n");
  auto [bad_status, bad_out] = run_floodgate({"validate", bad});
  EXPECT_EQ(bad_status, 1);
  EXPECT_THAT(bad_out, HasSubstr("bad.yaml:4:12: rules.a.burst: must be at least 1, got 0"));

  auto [dir_status, dir_out] = run_floodgate({"validate", dir.path()});
  EXPECT_EQ(dir_status, 1);  // the directory holds bad.yaml
  EXPECT_THAT(dir_out, HasSubstr("bad.yaml:4:12"));

  auto [missing_status, missing_out] = run_floodgate({"validate", dir.path() + "/none.yaml"});
  EXPECT_EQ(missing_status, 1);
  EXPECT_THAT(missing_out, HasSubstr("no such file"));
}

const std::string kRlsConfigs = FLOODGATE_SOURCE_DIR "/tests/data/envoy-ratelimit-configs";

TEST(RulesConfig, ValidateAcceptsEveryGoodEnvoyRatelimitConfig) {
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kRlsConfigs)) {
    const fs::path& p = entry.path();
    if (p.extension() != ".yaml" || p.parent_path().filename() == "bad") continue;
    ++files;
    auto [status, out] = run_floodgate({"validate", p.string()});
    EXPECT_EQ(status, 0) << out;
    EXPECT_THAT(out, HasSubstr(p.string() + ": ok, envoyproxy/ratelimit config: 1 domain(s)"));
  }
  EXPECT_EQ(files, 26);

  // A directory is loaded as the service loads it: every domain once.
  auto [status, out] = run_floodgate({"validate", kRlsConfigs + "/main"});
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, HasSubstr("ok, envoyproxy/ratelimit config: 18 domain(s), 54 limit(s) in 18 "
                             "file(s)"));
  EXPECT_THAT(out, HasSubstr("  rl.foo.bar_banned: 0 per MINUTE name=banned_limit\n"));
}

TEST(RulesConfig, ValidateRefusesEveryBadEnvoyRatelimitConfigNamingFileAndLine) {
  const std::pair<const char*, const char*> bad[] = {
      {"bad_limit_unit.yaml", ":6:13: "}, {"bad_yaml.yaml", ":1:1: "},
      {"duplicate_key.yaml", ":6:10: "},  {"empty_domain.yaml", ":1:1: "},
      {"empty_key.yaml", ":3:5: "},       {"misspelled_key.yaml", ":5:5: "},
      {"misspelled_key2.yaml", ":7:7: "}, {"non_map_list.yaml", ":3:5: "},
      {"non_string_key.yaml", ":1:1: "},  {"replaces_empty.yaml", ":10:15: "},
      {"replaces_self.yaml", ":10:21: "}, {"unlimited_with_unit.yaml", ":6:13: "},
  };
  for (const auto& [file, where] : bad) {
    const std::string path = kRlsConfigs + "/bad/" + file;
    auto [status, out] = run_floodgate({"validate", path});
    EXPECT_NE(status, 0) << file;
    EXPECT_THAT(out, HasSubstr(path + where)) << out;
  }

  // duplicate_domain.yaml is bad beside another file of the domain test-domain.
  TempDir dir;
  dir.write("a.yaml", read_text(kRlsConfigs + "/basic/basic_config.yaml"));
  const std::string second =
      dir.write("b.yaml", read_text(kRlsConfigs + "/bad/duplicate_domain.yaml"));
  auto [status, out] = run_floodgate({"validate", dir.path()});
  EXPECT_NE(status, 0);
  EXPECT_THAT(out, HasSubstr(second + ":1:9: domain: duplicate domain 'test-domain'"));
  auto [alone_status, alone_out] =
      run_floodgate({"validate", kRlsConfigs + "/bad/duplicate_domain.yaml"});
  EXPECT_EQ(alone_status, 0) << alone_out;
}

TEST(RulesConfig, ValidateMergesDomainsOnRequest) {
  const std::string dir = kRlsConfigs + "/validate-only";
  TempDir tmp;
  tmp.write("1.yaml", read_text(dir + "/merge_domain_key1.yaml"));
  tmp.write("2.yaml", read_text(dir + "/merge_domain_key2.yaml"));
  auto [refused, refused_out] = run_floodgate({"validate", tmp.path()});
  EXPECT_NE(refused, 0);
  EXPECT_THAT(refused_out, HasSubstr("2.yaml:2:9: domain: duplicate domain 'test-domain'"));
  auto [merged, merged_out] = run_floodgate({"validate", "--merge-domains", tmp.path()});
  EXPECT_EQ(merged, 0) << merged_out;
  EXPECT_THAT(merged_out, HasSubstr("1 domain(s), 2 limit(s) in 2 file(s)"));
}

}  // namespace
}  // namespace floodgate::testing
