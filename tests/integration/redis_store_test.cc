// RedisStore against a real redis-server: the same decisions as the memory store (differential,
// with the test-time scripts), exact under concurrency, and every fault the issue names: Redis
// never started, a wrong password, SIGSTOP, kill -9 and restart, SCRIPT FLUSH, maxmemory.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "floodgate/redis_store.h"
#include "testlib/random_policy.h"
#include "testlib/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using testing::random_policy;
using testing::RedisServer;

RedisOptions options_for(const RedisServer& redis) {
  RedisOptions o;
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(redis.port());
  o.timeout = 50ms;  // generous: the test machine is small and shared
  return o;
}

// redis_cli(): one command over a blocking hiredis connection; the reply as text.
std::string redis_cli(int port, std::vector<std::string> args) {
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return "connect failed";
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
  std::string out;
  if (reply == nullptr) {
    out = "no reply";
  } else if (reply->type == REDIS_REPLY_INTEGER) {
    out = std::to_string(reply->integer);
  } else if (reply->str) {
    out = std::string(reply->str, reply->len);
  }
  if (reply) freeReplyObject(reply);
  redisFree(c);
  return out;
}

template <class Pred>
bool eventually(std::chrono::milliseconds limit, Pred pred) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// Every algorithm, through the store (the client, EVALSHA, decoding) and through the memory store,
// at the same simulated times: the same decisions, field by field.
TEST(RedisStore, DecidesExactlyAsTheMemoryStore) {
  RedisServer redis;
  ManualClock clock(Micros{1'700'000'000'000'000});
  RedisOptions o = options_for(redis);
  o.test_clock = &clock;
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s));
  MemoryStore memory(clock);
  Limiter shared(store);
  Limiter local(memory);

  std::mt19937_64 rng(20261123);
  for (int a = 0; a < kAlgorithmCount; ++a) {
    const auto algorithm = static_cast<Algorithm>(a);
    for (int p = 0; p < 6; ++p) {
      const Policy policy = random_policy(algorithm, rng);
      const std::string key = "diff:" + std::to_string(a) + ":" + std::to_string(p);
      for (int step = 0; step < 60; ++step) {
        const std::int64_t gap = std::uniform_int_distribution<std::int64_t>(
            0, std::max<std::int64_t>(1, policy.window().count() / 4))(rng);
        clock.advance(Micros{gap});
        const std::uint64_t cost =
            std::uniform_int_distribution<std::uint64_t>(0, policy.limit() + 1)(rng) % 3 == 0
                ? 0
                : std::uniform_int_distribution<std::uint64_t>(1, 3)(rng);
        const Outcome r = shared.check(key, policy, cost);
        const Decision m = local.check(key, policy, cost).decision;
        ASSERT_EQ(r.status, StoreStatus::kOk) << policy;
        const Decision& d = r.decision;
        SCOPED_TRACE(::testing::Message() << policy << " step " << step << " cost " << cost);
        EXPECT_EQ(d.allowed, m.allowed);
        EXPECT_EQ(d.reason, m.reason);
        EXPECT_EQ(d.limit, m.limit);
        EXPECT_EQ(d.remaining, m.remaining);
        EXPECT_EQ(d.reset_after, m.reset_after);
        EXPECT_EQ(d.retry_after, m.retry_after);
        EXPECT_EQ(d.delay, m.delay);
        if (HasFailure()) return;
      }
    }
  }
}

// Many threads, many checks in flight, one key: exactly the limit passes.
TEST(RedisStore, ConcurrentChecksOfOneKeyAdmitExactlyTheLimit) {
  RedisServer redis;
  RedisOptions o = options_for(redis);
  o.timeout = 2s;
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  for (const Policy& policy : {Policy::fixed_window(300, std::chrono::hours(1)).value(),
                               Policy::token_bucket(300, 0).value()}) {
    std::atomic<int> allowed{0};
    std::atomic<int> failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 100; ++i) {
          const Outcome out = limiter.check("exact", policy);
          if (out.status != StoreStatus::kOk) ++failed;
          if (out.decision.allowed) ++allowed;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(failed.load(), 0) << policy;
    EXPECT_EQ(allowed.load(), 300) << policy;
  }
}

// A thread's own event loop adopts a connection: checks made on that thread are answered on it,
// and release() lets the loop end.
TEST(RedisStore, AdoptedLoopIsAnsweredOnItsOwnThread) {
  RedisServer redis;
  boost::asio::io_context io{1};  // before the store: it must outlive the adopted connection
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  const Policy policy = Policy::fixed_window(3, std::chrono::minutes(1)).value();
  struct Done final : Completion {
    std::thread::id on;
    int calls = 0;
    void complete() override {
      on = std::this_thread::get_id();
      ++calls;
    }
  };
  std::vector<Outcome> outcomes(5);
  std::vector<Done> done(5);
  const CheckOp op{"lane", &policy, 1};
  std::thread::id loop_thread;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    store.adopt(io);
    // Ask once the lane has had time to connect (a loopback handshake takes a few ms), then
    // release it so run() returns.
    boost::asio::steady_timer connect_wait(io, 300ms);
    connect_wait.async_wait([&](const boost::system::error_code&) {
      for (std::size_t i = 0; i < outcomes.size(); ++i) {
        store.check({&op, 1}, {&outcomes[i], 1}, done[i]);
      }
    });
    auto poll = std::make_shared<boost::asio::steady_timer>(io);
    std::function<void()> wait_all = [&] {
      int finished = 0;
      for (const Done& d : done) finished += d.calls;
      if (finished == static_cast<int>(done.size())) {
        store.release(io);
        return;
      }
      poll->expires_after(1ms);
      poll->async_wait([&](const boost::system::error_code&) { wait_all(); });
    };
    wait_all();
    io.run();
  });
  runner.join();
  int allowed = 0;
  for (std::size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].calls, 1);
    EXPECT_EQ(done[i].on, loop_thread) << "answered on another thread";
    EXPECT_EQ(outcomes[i].status, StoreStatus::kOk);
    allowed += outcomes[i].decision.allowed;
  }
  EXPECT_EQ(allowed, 3);
}

// Batches: several ops in one check(), all decided, one completion.
TEST(RedisStore, BatchCompletesOnceWithEveryOutcome) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  const Policy policy = Policy::fixed_window(2, std::chrono::minutes(1)).value();
  std::vector<CheckOp> ops = {
      {"b1", &policy, 1}, {"b1", &policy, 1}, {"b1", &policy, 1}, {"b2", &policy, 2}};
  std::vector<Outcome> outcomes(ops.size());
  struct Done final : Completion {
    std::atomic<int> calls{0};
    void complete() override { calls.fetch_add(1); }
  } done;
  store.check(ops, outcomes, done);
  ASSERT_TRUE(eventually(2s, [&] { return done.calls.load() > 0; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(done.calls.load(), 1);
  int allowed_b1 = 0;
  for (int i = 0; i < 3; ++i) allowed_b1 += outcomes[static_cast<std::size_t>(i)].decision.allowed;
  EXPECT_EQ(allowed_b1, 2);
  EXPECT_TRUE(outcomes[3].decision.allowed);
  EXPECT_EQ(outcomes[3].decision.remaining, 0u);
}

TEST(RedisStore, KeysCarryATtlAndTheNamespace) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(5, std::chrono::seconds(30)).value();
  ASSERT_TRUE(limiter.check("ttl-key", policy).decision.allowed);
  const std::string key = RedisStore::redis_key(Algorithm::kFixedWindow, "ttl-key");
  EXPECT_EQ(key, "fg:fw:{ttl-key}");
  const long pttl = std::stol(redis_cli(redis.port(), {"PTTL", key}));
  EXPECT_GT(pttl, 0);
  EXPECT_LE(pttl, 30'000);
}

TEST(RedisStore, ResetForgetsTheKeyUnderEveryAlgorithmAndNothingElse) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy window = Policy::fixed_window(1, std::chrono::seconds(60)).value();
  const Policy log = Policy::sliding_window_log(1, std::chrono::seconds(60)).value();
  for (const char* key : {"gone", "kept"}) {
    ASSERT_TRUE(limiter.check(key, window).decision.allowed);
    ASSERT_TRUE(limiter.check(key, log).decision.allowed);
    ASSERT_FALSE(limiter.check(key, window).decision.allowed);
  }
  std::promise<StoreStatus> reset;
  store.reset("gone", [&](StoreStatus s) { reset.set_value(s); });
  ASSERT_EQ(reset.get_future().get(), StoreStatus::kOk);
  EXPECT_TRUE(limiter.check("gone", window).decision.allowed);
  EXPECT_TRUE(limiter.check("gone", log).decision.allowed);  // and the log's meta key
  EXPECT_FALSE(limiter.check("kept", window).decision.allowed);
  EXPECT_FALSE(limiter.check("kept", log).decision.allowed);
}

TEST(RedisStore, CommandsBesideTheDecisionsAnswerInPlainTypes) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  auto call = [&](std::vector<std::string> args) {
    std::promise<RedisValue> reply;
    store.command(std::move(args), "k", 1s, [&](RedisValue v) { reply.set_value(std::move(v)); });
    return reply.get_future().get();
  };
  EXPECT_EQ(call({"SET", "k", "v"}).type, RedisValue::Type::kStatus);
  const RedisValue got = call({"GET", "k"});
  EXPECT_EQ(got.type, RedisValue::Type::kString);
  EXPECT_EQ(got.text, "v");
  EXPECT_EQ(call({"GET", "absent"}).type, RedisValue::Type::kNil);
  const RedisValue n = call({"HSET", "h", "a", "1", "b", "2"});
  EXPECT_EQ(n.type, RedisValue::Type::kInteger);
  EXPECT_EQ(n.integer, 2);
  const RedisValue all = call({"HGETALL", "h"});
  ASSERT_EQ(all.type, RedisValue::Type::kArray);
  EXPECT_EQ(all.elements.size(), 4U);
  const RedisValue wrong = call({"INCR", "h"});
  EXPECT_EQ(wrong.type, RedisValue::Type::kError);
  EXPECT_NE(wrong.text.find("WRONGTYPE"), std::string::npos);
  EXPECT_FALSE(wrong.ok());
  // A paused server: the command fails by its own timeout, not the checks' 50 ms.
  redis.pause();
  std::promise<RedisValue> late;
  const auto sent = std::chrono::steady_clock::now();
  store.command({"GET", "k"}, "k", 200ms, [&](RedisValue v) { late.set_value(std::move(v)); });
  const RedisValue timed_out = late.get_future().get();
  redis.resume();
  EXPECT_EQ(timed_out.type, RedisValue::Type::kFailed);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, 150ms);
}

TEST(RedisStore, SubscribesAndSubscribesAgainAfterTheServerComesBack) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  std::mutex mu;
  std::vector<std::string> messages;
  std::atomic<int> subscribed{0};
  store.subscribe(
      "fg:test:channel",
      [&](std::string_view m) {
        std::lock_guard lock(mu);
        messages.emplace_back(m);
      },
      [&] { subscribed.fetch_add(1); });
  auto wait_for = [](auto pred) {
    const auto until = std::chrono::steady_clock::now() + 5s;
    while (!pred() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    return pred();
  };
  ASSERT_TRUE(wait_for([&] { return subscribed.load() == 1; }));
  EXPECT_EQ(redis_cli(redis.port(), {"PUBLISH", "fg:test:channel", "one"}), "1");
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(mu);
    return messages.size() == 1;
  }));
  redis.restart();
  ASSERT_TRUE(wait_for([&] { return subscribed.load() == 2; }));
  EXPECT_EQ(redis_cli(redis.port(), {"PUBLISH", "fg:test:channel", "two"}), "1");
  ASSERT_TRUE(wait_for([&] {
    std::lock_guard lock(mu);
    return messages.size() == 2;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(messages[1], "two");
}

// unix:///path: a local Redis through its Unix socket, for the decisions and for the
// subscription, and back after the server restarts (kill -9: the socket file stays behind).
TEST(RedisStore, SpeaksOverAUnixSocketAndComesBackAfterARestart) {
  const std::string socket =
      ::testing::TempDir() + "fg-redis-" + std::to_string(::getpid()) + ".sock";
  RedisServer redis({"--unixsocket", socket, "--unixsocketperm", "700"});
  auto o = parse_redis_url("unix://" + socket).value();
  o.timeout = 50ms;
  o.backoff_max = 100ms;
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s)) << store.health().error;
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(2, std::chrono::seconds(30)).value();
  EXPECT_TRUE(limiter.check("unix", policy).decision.allowed);
  EXPECT_TRUE(limiter.check("unix", policy).decision.allowed);
  EXPECT_FALSE(limiter.check("unix", policy).decision.allowed);
  // Redis saw it through the socket: the key is there (read over TCP).
  EXPECT_EQ(redis_cli(redis.port(), {"DBSIZE"}), "1");

  std::atomic<int> subscribed{0};
  std::atomic<int> received{0};
  store.subscribe(
      "fg:test:unix", [&](std::string_view) { received.fetch_add(1); },
      [&] { subscribed.fetch_add(1); });
  ASSERT_TRUE(eventually(5s, [&] { return subscribed.load() == 1; }));
  EXPECT_EQ(redis_cli(redis.port(), {"PUBLISH", "fg:test:unix", "m"}), "1");
  EXPECT_TRUE(eventually(5s, [&] { return received.load() == 1; }));

  redis.kill9();
  redis.restart();
  EXPECT_TRUE(eventually(
      5s, [&] { return limiter.check("unix-after", policy).status == StoreStatus::kOk; }));
  EXPECT_TRUE(eventually(5s, [&] { return subscribed.load() == 2; }));
  EXPECT_EQ(store.health().state, "connected");
  std::remove(socket.c_str());
}

// A socket path nobody listens on: refused fast, the path named.
TEST(RedisStore, AUnixSocketNobodyListensOnIsReportedByPath) {
  auto o = parse_redis_url("unix:///nonexistent/fg-redis.sock").value();
  RedisStore store(o);
  EXPECT_FALSE(store.wait_connected(300ms));
  EXPECT_TRUE(eventually(2s, [&] { return !store.health().error.empty(); }));
  EXPECT_NE(store.health().error.find("unix:/nonexistent/fg-redis.sock"), std::string::npos)
      << store.health().error;
}

TEST(RedisStore, ReloadsScriptsAfterScriptFlush) {
  RedisServer redis;
  RedisStore store(options_for(redis));
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy policy = Policy::gcra(100, std::chrono::seconds(1)).value();
  ASSERT_EQ(limiter.check("flush", policy).status, StoreStatus::kOk);
  EXPECT_EQ(redis_cli(redis.port(), {"SCRIPT", "FLUSH"}), "OK");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(limiter.check("flush", policy).status, StoreStatus::kOk);
  }
  std::string metrics;
  store.append_metrics(metrics);
  EXPECT_NE(metrics.find("floodgate_store_script_reloads_total{store=\"redis\"} 1"),
            std::string::npos)
      << metrics;
}

TEST(RedisStore, RedisNeverStartedFailsFastThenConnectsWhenItComes) {
  // Take a free port from a server we stop at once.
  auto redis = std::make_unique<RedisServer>();
  const int port = redis->port();
  redis->stop();
  RedisOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.backoff_max = 200ms;
  RedisStore store(o);
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(5, std::chrono::seconds(30)).value();
  const auto started = std::chrono::steady_clock::now();
  const Outcome out = limiter.check("down", policy);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 50ms);
  EXPECT_EQ(out.status, StoreStatus::kUnavailable);
  EXPECT_FALSE(store.health().ready);
  // An admin command fails as well, but is no decision: the errors count the check alone.
  std::promise<RedisValue> admin;
  store.command({"GET", "k"}, "k", 1s, [&](RedisValue v) { admin.set_value(std::move(v)); });
  EXPECT_EQ(admin.get_future().get().type, RedisValue::Type::kFailed);
  std::string metrics;
  store.append_metrics(metrics);
  EXPECT_NE(
      metrics.find("floodgate_store_errors_total{store=\"redis\",kind=\"not_connected\"} 1\n"),
      std::string::npos)
      << metrics;
  EXPECT_EQ(store.health().errors, 1U);
  EXPECT_TRUE(eventually(1s, [&] { return !store.health().error.empty(); }));
  EXPECT_EQ(store.health().state, "disconnected");

  redis->restart();  // same port
  ASSERT_TRUE(store.wait_connected(3s));
  EXPECT_TRUE(
      eventually(2s, [&] { return limiter.check("down", policy).status == StoreStatus::kOk; }));
  EXPECT_TRUE(store.health().ready);
}

TEST(RedisStore, WrongPasswordIsReportedNotRetriedInALoop) {
  RedisServer redis({"--requirepass", "right"});
  RedisOptions o = options_for(redis);
  o.password = "wrong";
  std::atomic<int> warnings{0};
  o.log = [&](std::string_view level, std::string_view) {
    if (level == "warn") ++warnings;
  };
  RedisStore store(o);
  ASSERT_TRUE(eventually(3s, [&] { return store.health().state == "auth_failed"; }))
      << store.health().state << " " << store.health().error;
  EXPECT_NE(store.health().error.find("AUTH"), std::string::npos) << store.health().error;
  std::this_thread::sleep_for(500ms);
  EXPECT_LE(warnings.load(), 2);  // the same error is logged once, not per attempt

  o.password = "right";
  o.log = nullptr;
  RedisStore good(o);
  EXPECT_TRUE(good.wait_connected(3s));
}

TEST(RedisStore, AuthenticatesAsAnAclUserAndSelectsTheDatabase) {
  RedisServer redis;
  ASSERT_EQ(
      redis_cli(redis.port(), {"ACL", "SETUSER", "limiter", "on", ">s3cret", "~fg:*", "+@all"}),
      "OK");
  auto o =
      parse_redis_url("redis://limiter:s3cret@127.0.0.1:" + std::to_string(redis.port()) + "/5")
          .value();
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(3s)) << store.health().error;
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(5, std::chrono::seconds(30)).value();
  EXPECT_EQ(limiter.check("acl", policy).status, StoreStatus::kOk);
  EXPECT_EQ(redis_cli(redis.port(), {"SELECT", "5"}), "OK");
  // The key went to database 5, not 0.
  redisContext* c = redisConnect("127.0.0.1", redis.port());
  ASSERT_TRUE(c && !c->err);
  freeReplyObject(redisCommand(c, "SELECT 5"));
  auto* reply = static_cast<redisReply*>(redisCommand(c, "EXISTS fg:fw:{acl}"));
  EXPECT_EQ(reply->integer, 1);
  freeReplyObject(reply);
  reply = static_cast<redisReply*>(redisCommand(c, "SELECT 0"));
  freeReplyObject(reply);
  reply = static_cast<redisReply*>(redisCommand(c, "EXISTS fg:fw:{acl}"));
  EXPECT_EQ(reply->integer, 0);
  freeReplyObject(reply);
  redisFree(c);
}

TEST(RedisStore, PausedRedisTimesOutOpensTheCircuitAndClosesAfterResume) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "latency bounds do not hold under ThreadSanitizer's slowdown";
#endif
  RedisServer redis;
  RedisOptions o = options_for(redis);
  o.timeout = 10ms;
  o.breaker_cooldown = 100ms;
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy policy = Policy::token_bucket(1'000'000, 1000).value();
  ASSERT_EQ(limiter.check("stop", policy).status, StoreStatus::kOk);

  redis.pause();
  std::vector<std::int64_t> latencies_us;
  int timeouts = 0;
  const auto paused_until = std::chrono::steady_clock::now() + 1s;
  while (std::chrono::steady_clock::now() < paused_until) {
    const auto t0 = std::chrono::steady_clock::now();
    const Outcome out = limiter.check("stop", policy);
    latencies_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    if (out.status == StoreStatus::kTimeout) ++timeouts;
    EXPECT_NE(out.status, StoreStatus::kOk);
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  const std::int64_t p99 = latencies_us[latencies_us.size() * 99 / 100];
  EXPECT_LE(p99, 15'000) << "p99 " << p99 << " us over " << latencies_us.size() << " checks";
  EXPECT_GE(timeouts, 1);
  EXPECT_EQ(store.health().state, "circuit_open");

  redis.resume();
  const auto resumed = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(2s, [&] {
    return limiter.check("stop", policy).status == StoreStatus::kOk && store.health().ready;
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - resumed, 1s);
}

TEST(RedisStore, RecoversFromKill9AndRestartWithinTwoSeconds) {
  RedisServer redis;
  RedisOptions o = options_for(redis);
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(1'000'000, std::chrono::hours(1)).value();
  ASSERT_EQ(limiter.check("k9", policy).status, StoreStatus::kOk);
  redis.kill9();
  EXPECT_NE(limiter.check("k9", policy).status, StoreStatus::kOk);
  redis.restart();  // empty: the scripts must be loaded again
  const auto restarted = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      eventually(3s, [&] { return limiter.check("k9", policy).status == StoreStatus::kOk; }));
  EXPECT_LT(std::chrono::steady_clock::now() - restarted, 2s);
}

TEST(RedisStore, OutOfMemoryIsAStoreErrorNotACrash) {
  RedisServer redis({"--maxmemory", "2mb", "--maxmemory-policy", "noeviction"});
  RedisOptions o = options_for(redis);
  o.breaker_failures = 1'000'000;  // keep sending: we want to see every error
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(10, std::chrono::hours(1)).value();
  int failures = 0;
  for (int i = 0; i < 100'000 && failures == 0; ++i) {
    if (limiter.check("oom:" + std::to_string(i) + std::string(200, 'x'), policy).status !=
        StoreStatus::kOk) {
      ++failures;
    }
  }
  EXPECT_GT(failures, 0);
  std::string metrics;
  store.append_metrics(metrics);
  EXPECT_EQ(metrics.find("floodgate_store_errors_total{store=\"redis\",kind=\"oom\"} 0"),
            std::string::npos)
      << metrics;
}

// rediss://: a throw-away CA and server certificate, redis-server with --tls-port.
TEST(RedisStore, SpeaksTlsWhenAskedTo) {
  char dir_template[] = "/tmp/floodgate-tls-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string make_certs =
      "cd " + dir +
      " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=floodgate-test-ca "
      "-keyout ca.key -out ca.crt"
      " && openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key "
      "-out server.csr"
      " && printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext"
      " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 "
      "-extfile san.ext -out server.crt";
  ASSERT_EQ(std::system((make_certs + " > /dev/null 2>&1").c_str()), 0);

  // A plain port for the fixture's PING, the TLS port for the store.
  RedisServer probe;
  const int tls_port = probe.port();
  probe.stop();
  RedisServer redis({"--tls-port", std::to_string(tls_port), "--tls-cert-file", dir + "/server.crt",
                     "--tls-key-file", dir + "/server.key", "--tls-ca-cert-file", dir + "/ca.crt",
                     "--tls-auth-clients", "no"});
  auto o = parse_redis_url("rediss://127.0.0.1:" + std::to_string(tls_port)).value();
  o.tls_ca_file = dir + "/ca.crt";
  RedisStore store(o);
  ASSERT_TRUE(store.wait_connected(5s)) << store.health().error;
  Limiter limiter(store);
  const Policy policy = Policy::fixed_window(2, std::chrono::seconds(30)).value();
  EXPECT_TRUE(limiter.check("tls", policy).decision.allowed);
  EXPECT_TRUE(limiter.check("tls", policy).decision.allowed);
  EXPECT_FALSE(limiter.check("tls", policy).decision.allowed);

  // A client that does not trust the CA refuses the server.
  auto untrusting = o;
  untrusting.tls_ca_file = dir + "/server.crt";  // not a CA
  RedisStore refused(untrusting);
  EXPECT_FALSE(refused.wait_connected(500ms));
  EXPECT_NE(refused.health().error.find("TLS"), std::string::npos) << refused.health().error;
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace floodgate
