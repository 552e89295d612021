// The Redis store behind Redis Sentinel (redis+sentinel://): a real master, replica and three
// sentinels started by scripts/redis-sentinel.sh on loopback ports; a failover under load (the
// master killed with SIGKILL) is followed without a restart, and the gap is reported.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "floodgate/limiter.h"
#include "floodgate/redis_store.h"
#include "testlib/command.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

const std::string kScript = FLOODGATE_SOURCE_DIR "/scripts/redis-sentinel.sh";

std::pair<int, std::string> run(const std::string& command) {
  return floodgate::testing::run_command(command);
}

std::string value_of(const std::string& text, const std::string& name) {
  const auto at = text.find(name + "=");
  if (at == std::string::npos) return "";
  const auto from = at + name.size() + 1;
  return text.substr(from, text.find('\n', from) - from);
}

class RedisSentinel : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fg-sentinel-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    auto [status, out] = run(kScript + " up --dir " + dir_);
    ASSERT_EQ(status, 0) << out;
    url_ = value_of(out, "REDIS_URL");
    ASSERT_FALSE(url_.empty()) << out;
  }
  void TearDown() override {
    run(kScript + " down --dir " + dir_);
    std::filesystem::remove_all(dir_);
  }

  RedisOptions options() const {
    RedisOptions o = parse_redis_url(url_).value();
    o.timeout = 200ms;  // a loaded test machine: no timeouts while the master is up
    return o;
  }

  std::string dir_;
  std::string url_;
};

TEST_F(RedisSentinel, FindsTheMasterAndFollowsAFailoverUnderLoad) {
  RedisStore store(options());
  ASSERT_TRUE(store.wait_connected(5s));
  Limiter limiter(store);
  const auto policy = Policy::fixed_window(1'000'000, std::chrono::hours(1)).value();
  ASSERT_EQ(limiter.check("sentinel:before", policy).status, StoreStatus::kOk);

  // Load: checks one after another; record when the store stops answering and when it is back.
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> first_failure_ms{-1};
  std::atomic<std::int64_t> back_ms{-1};
  std::atomic<int> ok_after{0};
  const auto t0 = Steady::now();
  auto since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0).count();
  };
  std::thread load([&] {
    while (!stop) {
      const Outcome o = limiter.check("sentinel:load", policy);
      if (o.status != StoreStatus::kOk) {
        if (first_failure_ms < 0) first_failure_ms = since();
        back_ms = -1;
        ok_after = 0;
      } else if (first_failure_ms >= 0) {
        if (back_ms < 0) back_ms = since();
        ++ok_after;
      }
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  auto [status, out] = run(kScript + " failover --dir " + dir_);
  ASSERT_EQ(status, 0) << out;
  // Service resumes on the promoted replica, without a restart of anything of ours.
  const auto deadline = Steady::now() + 15s;
  while (Steady::now() < deadline && ok_after < 50) std::this_thread::sleep_for(50ms);
  stop = true;
  load.join();
  ASSERT_GE(first_failure_ms.load(), 0) << "the master's death was never noticed";
  ASSERT_GE(back_ms.load(), 0) << "no answer from the promoted replica";
  EXPECT_GE(ok_after.load(), 50);
  std::printf("sentinel failover: store unavailable for %lld ms (sentinels report %s ms)\n",
              static_cast<long long>(back_ms - first_failure_ms),
              value_of(out, "FAILOVER_GAP_MS").c_str());
  EXPECT_LT(back_ms - first_failure_ms, 15'000);
  // The new master holds the counts written after the switch.
  const Outcome after = limiter.check("sentinel:load", policy, 0);
  EXPECT_EQ(after.status, StoreStatus::kOk);
  EXPECT_LT(after.decision.remaining, 1'000'000u);
  EXPECT_TRUE(store.health().ready);
}

TEST_F(RedisSentinel, NoSentinelAnsweringMeansNotReadyNamingWhy) {
  RedisOptions o = options();
  o.sentinels = {{"127.0.0.1", 1}};  // nothing listens on port 1
  RedisStore store(o);
  EXPECT_FALSE(store.wait_connected(500ms));
  const StoreHealth h = store.health();
  EXPECT_FALSE(h.ready);
  EXPECT_NE(h.error.find("sentinel"), std::string::npos) << h.error;
}

}  // namespace
}  // namespace floodgate
