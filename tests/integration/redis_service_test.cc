// floodgate serving over HTTP with BACKEND=redis, against real redis-server processes: every
// algorithm, exactness across two instances, the failure modes with Redis down, a wrong password,
// and faults under load (SIGSTOP, kill -9 and restart, SCRIPT FLUSH). Loopback only, bounded.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testlib/process.h"
#include "testlib/redis_server.h"

namespace floodgate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<std::string> redis_args(const RedisServer& redis, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {
      "--backend", "redis", "--redis-url", "redis://127.0.0.1:" + std::to_string(redis.port()),
      "--threads", "2"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

std::vector<std::string> redis_args_for_port(int port, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"--backend",   "redis",
                                   "--redis-url", "redis://127.0.0.1:" + std::to_string(port),
                                   "--threads",   "1"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

int ready_status(int port) {
  Connection c(port);
  auto r = c.request("GET", "/ready");
  return r ? r->status : 0;
}

void redis_command(int port, const char* command) {
  redisContext* c = redisConnect("127.0.0.1", port);
  ASSERT_TRUE(c && !c->err);
  freeReplyObject(redisCommand(c, command));
  redisFree(c);
}

TEST(RedisService, EveryAlgorithmThroughHttp) {
  RedisServer redis;
  Server server(redis_args(redis));
  ASSERT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  Connection c(server.port());
  auto ready = c.request("GET", "/ready");
  EXPECT_EQ(ready->body, R"({"status":"ready","store":"redis","state":"connected"})");
  const std::vector<std::string> policies = {
      R"("algorithm":"token_bucket","capacity":3,"refill_rate":0.001)",
      R"("algorithm":"gcra","limit":3,"window":3600)",
      R"("algorithm":"leaky_bucket","capacity":3,"leak_rate":0.001)",
      R"("algorithm":"fixed_window","limit":3,"window":3600)",
      R"("algorithm":"sliding_window_log","limit":3,"window":3600)",
      R"("algorithm":"sliding_window_counter","limit":3,"window":3600)",
  };
  for (const std::string& p : policies) {
    const std::string body = R"({"key":"http-all",)" + p + "}";
    for (int i = 0; i < 3; ++i) {
      auto r = c.request("POST", "/v1/check", body);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200) << p << " " << r->body;
      EXPECT_THAT(r->body, HasSubstr(R"("degraded":false)"));
      EXPECT_EQ(r->header("X-RateLimit-Remaining"), std::to_string(2 - i)) << p;
    }
    auto denied = c.request("POST", "/v1/check", body);
    ASSERT_TRUE(denied);
    EXPECT_EQ(denied->status, 429) << p;
    EXPECT_THAT(denied->body, HasSubstr(R"("reason":"limited")"));
    EXPECT_FALSE(denied->header("Retry-After").empty()) << p;
  }
  auto metrics = c.request("GET", "/metrics");
  EXPECT_THAT(metrics->body, HasSubstr("floodgate_store_latency_seconds_count{store=\"redis\"}"));
  EXPECT_THAT(metrics->body, HasSubstr("floodgate_store_circuit_state{store=\"redis\"} 0"));
}

// Two instances, many concurrent keep-alive clients, one key: exactly the limit passes.
TEST(RedisService, TwoInstancesAdmitExactlyTheLimit) {
  RedisServer redis;
  Server a(redis_args(redis, {"--store-timeout-ms", "1000"}));
  Server b(redis_args(redis, {"--store-timeout-ms", "1000"}));
  ASSERT_TRUE(eventually(
      3s, [&] { return ready_status(a.port()) == 200 && ready_status(b.port()) == 200; }));
  for (const std::string policy :
       {R"("algorithm":"fixed_window","limit":500,"window":3600)",
        R"("algorithm":"token_bucket","capacity":500,"refill_rate":0)"}) {
    const std::string body = R"({"key":"exact-two",)" + policy + "}";
    std::atomic<int> allowed{0};
    std::atomic<int> denied{0};
    std::atomic<int> other{0};
    std::mutex first_other_mu;
    std::string first_other;  // the first unexpected answer, for the failure message
    auto note = [&](std::string what) {
      ++other;
      std::lock_guard lock(first_other_mu);
      if (first_other.empty()) first_other = std::move(what);
    };
    std::vector<std::thread> clients;
    for (int t = 0; t < 16; ++t) {
      clients.emplace_back([&, t] {
        Connection c(t % 2 == 0 ? a.port() : b.port());
        for (int i = 0; i < 100; ++i) {
          auto r = c.request("POST", "/v1/check", body);
          if (!r) {
            note("no response (request " + std::to_string(i) + ")");
            return;
          }
          if (r->status == 200 && r->body.find(R"("degraded":false)") != std::string::npos) {
            ++allowed;
          } else if (r->status == 429 && r->body.find(R"("degraded":false)") != std::string::npos) {
            ++denied;
          } else {
            note(std::to_string(r->status) + " " + r->body);
          }
        }
      });
    }
    for (auto& t : clients) t.join();
    EXPECT_EQ(other.load(), 0) << policy << "; first: " << first_other;
    EXPECT_EQ(allowed.load(), 500) << policy;
    EXPECT_EQ(denied.load(), 1100) << policy;
  }
}

// Redis never started: the service starts, answers by its failure mode (degraded), reports not
// ready, and connects once Redis comes.
TEST(RedisService, StartsWithRedisDownAnswersByFailureModeAndConnectsWhenItComes) {
  auto redis = std::make_unique<RedisServer>();
  const int port = redis->port();
  redis->stop();
  const std::string rules_path = ::testing::TempDir() + "/floodgate-failure-rules.yaml";
  {
    std::ofstream rules(rules_path);
    rules << "rules:\n"
             "  closed:\n"
             "    algorithm: fixed_window\n    limit: 2\n    window: 60\n"
             "    failure_mode: fail_closed\n"
             "  local:\n"
             "    algorithm: fixed_window\n    limit: 2\n    window: 60\n"
             "    failure_mode: local\n";
  }
  Server server(redis_args_for_port(port, {"--config", rules_path}));
  Connection c(server.port());
  auto ready = c.request("GET", "/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr(R"("status":"not_ready","store":"redis")"));

  // fail_open (the global default): allowed, degraded.
  auto open = c.request("POST", "/v1/check", R"({"key":"down"})");
  ASSERT_TRUE(open);
  EXPECT_EQ(open->status, 200);
  EXPECT_THAT(open->body, HasSubstr(R"("degraded":true)"));
  // fail_closed (per rule): denied, degraded, with a retry hint.
  auto closed = c.request("POST", "/v1/check", R"({"key":"down","rule":"closed"})");
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status, 429);
  EXPECT_THAT(closed->body, HasSubstr(R"("reason":"store_unavailable")"));
  EXPECT_THAT(closed->body, HasSubstr(R"("degraded":true)"));
  EXPECT_EQ(closed->header("Retry-After"), "1");
  // local (per rule): the in-process store applies the same rule.
  for (int i = 0; i < 2; ++i) {
    auto r = c.request("POST", "/v1/check", R"({"key":"down","rule":"local"})");
    EXPECT_EQ(r->status, 200);
    EXPECT_THAT(r->body, HasSubstr(R"("degraded":true)"));
  }
  auto local_denied = c.request("POST", "/v1/check", R"({"key":"down","rule":"local"})");
  EXPECT_EQ(local_denied->status, 429);
  EXPECT_THAT(local_denied->body, HasSubstr(R"("reason":"limited")"));

  redis->restart();
  EXPECT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  EXPECT_TRUE(eventually(2s, [&] {
    auto r = Connection(server.port()).request("POST", "/v1/check", R"({"key":"up"})");
    return r && r->body.find(R"("degraded":false)") != std::string::npos;
  }));
  auto metrics = c.request("GET", "/metrics");
  EXPECT_THAT(metrics->body,
              HasSubstr(R"(floodgate_decisions_degraded_total{outcome="denied"} 2)"));
  EXPECT_THAT(server.output(), HasSubstr("redis: cannot connect"));
}

// GET /healthcheck, envoyproxy/ratelimit's probe path: "OK" while the process serves; with
// REDIS_HEALTH_CHECK_ACTIVE_CONNECTION it also fails while Redis is not reachable.
TEST(RedisService, HealthcheckAnswersAsEnvoyRatelimitsProbe) {
  auto redis = std::make_unique<RedisServer>();
  const int port = redis->port();
  redis->stop();
  Server plain(redis_args_for_port(port));
  Server strict(redis_args_for_port(port, {"--redis-health-check-active-connection", "true"}));
  auto healthcheck = [](const Server& server) {
    auto r = Connection(server.port()).request("GET", "/healthcheck");
    return r ? std::to_string(r->status) + " " + r->body : std::string("no answer");
  };
  EXPECT_EQ(healthcheck(plain), "200 OK");
  EXPECT_EQ(healthcheck(strict).substr(0, 3), "503");
  redis->restart();
  EXPECT_TRUE(eventually(3s, [&] { return healthcheck(strict) == "200 OK"; }))
      << healthcheck(strict);
  EXPECT_EQ(healthcheck(plain), "200 OK");
}

TEST(RedisService, WrongPasswordShowsInReadyAndTheLog) {
  RedisServer redis({"--requirepass", "right"});
  Server server(redis_args(redis, {"--redis-password", "wrong"}));
  Connection c(server.port());
  ASSERT_TRUE(eventually(3s, [&] {
    auto r = c.request("GET", "/ready");
    return r && r->body.find("auth_failed") != std::string::npos;
  }));
  auto ready = c.request("GET", "/ready");
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("AUTH failed"));
  EXPECT_TRUE(server.wait_for_output("AUTH failed", 2s));
  EXPECT_FALSE(server.wait_exit(100ms).has_value());  // still serving, no crash loop
}

// Load: a few keep-alive clients on distinct keys, recording each answer's latency and kind.
class Load {
 public:
  Load(int port, int clients) {
    for (int t = 0; t < clients; ++t) {
      threads_.emplace_back([this, port, t] {
        Connection c(port);
        const std::string body = R"({"key":"load-)" + std::to_string(t) +
                                 R"(","algorithm":"token_bucket","capacity":1000000,)"
                                 R"("refill_rate":100000})";
        while (!stop_.load()) {
          const auto t0 = std::chrono::steady_clock::now();
          auto r = c.request("POST", "/v1/check", body);
          const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - t0)
                              .count();
          std::lock_guard lock(mu_);
          if (!r) {
            ++broken_;
            return;
          }
          samples_.push_back(
              {t0, us, r->status, r->body.find(R"("degraded":true)") != std::string::npos});
        }
      });
    }
  }
  ~Load() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  struct Sample {
    std::chrono::steady_clock::time_point at;
    std::int64_t us;
    int status;
    bool degraded;
  };
  std::vector<Sample> samples() {
    std::lock_guard lock(mu_);
    return samples_;
  }
  int broken() {
    std::lock_guard lock(mu_);
    return broken_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<Sample> samples_;
  int broken_ = 0;
};

TEST(RedisService, PausedRedisUnderLoadStaysWithinTimeoutThenRecovers) {
  RedisServer redis;
  Server server(redis_args(redis));
  ASSERT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  Load load(server.port(), 4);
  std::this_thread::sleep_for(300ms);
  redis.pause();
  const auto paused = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2s);
  redis.resume();
  const auto resumed = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1500ms);
  load.stop();
  EXPECT_EQ(load.broken(), 0);

  std::vector<std::int64_t> during;
  std::optional<std::chrono::steady_clock::time_point> first_good_after;
  int errors = 0;
  for (const auto& s : load.samples()) {
    if (s.status != 200) ++errors;
    if (s.at >= paused && s.at < resumed) during.push_back(s.us);
    if (s.at >= resumed && !s.degraded && !first_good_after) first_good_after = s.at;
  }
  EXPECT_EQ(errors, 0);  // fail_open: every answer a 200
  ASSERT_GT(during.size(), 10u);
  std::sort(during.begin(), during.end());
  const std::int64_t p99 = during[during.size() * 99 / 100];
  RecordProperty("paused_p99_us", static_cast<int>(p99));
  // STORE_TIMEOUT_MS (10) + 5 ms, with the HTTP hop included.
  EXPECT_LE(p99, 15'000) << "p99 while paused: " << p99 << " us over " << during.size();
  ASSERT_TRUE(first_good_after.has_value());
  EXPECT_LT(*first_good_after - resumed, 1s);
  auto metrics = Connection(server.port()).request("GET", "/metrics");
  EXPECT_THAT(metrics->body,
              ::testing::Not(HasSubstr("floodgate_store_circuit_opened_total{store=\"redis\"} 0")));
  EXPECT_THAT(metrics->body, HasSubstr("floodgate_store_circuit_state{store=\"redis\"} 0"));
}

// BREAKER_FAILURES and BREAKER_COOLDOWN_MS: with Redis paused, one timed-out check opens the
// breaker and the next ones fail at once (circuit_open) for its long cooldown; with the defaults
// (5 failures, probes every 250 ms) they would each have waited out STORE_TIMEOUT_MS.
TEST(RedisService, TheBreakerFollowsItsSettings) {
  RedisServer redis;
  Server server(redis_args(redis), {"BREAKER_FAILURES=1", "BREAKER_COOLDOWN_MS=600000"});
  ASSERT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  Connection c(server.port());
  const std::string body = R"({"key":"breaker","algorithm":"fixed_window","limit":5,"window":60})";
  EXPECT_THAT(c.request("POST", "/v1/check", body)->body, HasSubstr(R"("degraded":false)"));
  redis.pause();
  for (int i = 0; i < 4; ++i) {
    EXPECT_THAT(c.request("POST", "/v1/check", body)->body, HasSubstr(R"("degraded":true)"));
  }
  auto metrics = c.request("GET", "/metrics");
  redis.resume();
  EXPECT_THAT(metrics->body, HasSubstr("floodgate_store_circuit_state{store=\"redis\"} 1"));
  EXPECT_THAT(metrics->body,
              HasSubstr("floodgate_store_errors_total{store=\"redis\",kind=\"timeout\"} 1\n"));
  EXPECT_THAT(metrics->body,
              HasSubstr("floodgate_store_errors_total{store=\"redis\",kind=\"circuit_open\"} 3\n"));

  const auto [status, output] = run_floodgate({"serve", "--port", "0", "--breaker-failures", "0"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(output, HasSubstr("--breaker-failures: Value 0 not in range"));
}

TEST(RedisService, Kill9AndRestartUnderLoadRecoversWithinTwoSeconds) {
  RedisServer redis;
  Server server(redis_args(redis));
  ASSERT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  Load load(server.port(), 4);
  std::this_thread::sleep_for(300ms);
  redis.kill9();
  std::this_thread::sleep_for(500ms);
  redis.restart();
  const auto restarted = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2500ms);
  load.stop();
  EXPECT_EQ(load.broken(), 0);
  std::optional<std::chrono::steady_clock::time_point> first_good_after;
  int errors = 0;
  for (const auto& s : load.samples()) {
    if (s.status != 200) ++errors;
    if (s.at >= restarted && !s.degraded && !first_good_after) first_good_after = s.at;
  }
  EXPECT_EQ(errors, 0);
  ASSERT_TRUE(first_good_after.has_value());
  EXPECT_LT(*first_good_after - restarted, 2s);
  EXPECT_FALSE(server.wait_exit(10ms).has_value());
}

TEST(RedisService, ScriptFlushUnderLoadIsInvisible) {
  RedisServer redis;
  Server server(redis_args(redis, {"--store-timeout-ms", "1000"}));
  ASSERT_TRUE(eventually(3s, [&] { return ready_status(server.port()) == 200; }));
  Load load(server.port(), 4);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(100ms);
    redis_command(redis.port(), "SCRIPT FLUSH");
  }
  std::this_thread::sleep_for(100ms);
  load.stop();
  int degraded = 0;
  const auto samples = load.samples();
  for (const auto& s : samples) degraded += s.degraded;
  EXPECT_GT(samples.size(), 100u);
  EXPECT_EQ(degraded, 0);
  auto metrics = Connection(server.port()).request("GET", "/metrics");
  EXPECT_THAT(metrics->body,
              ::testing::Not(HasSubstr("floodgate_store_script_reloads_total{store=\"redis\"} 0")));
}

}  // namespace
}  // namespace floodgate::testing
