// redis_scripts_bench: what the store's Lua scripts cost inside Redis, from Redis' own accounting
// (INFO commandstats, usec of EVALSHA), so neither this client nor the machine's load is counted.
//
// 1. Per algorithm: 20,000 checks on 1,000 keys pipelined as calls of 1, 8 and 40 checks — the
//    reason the store sends the checks of one turn as one call.
// 2. A sliding log at the largest limit (100,000 entries): one call as entries expire under it,
//    admitted and denied — it must stay cheap however long the log.
//
// Usage: redis_scripts_bench [repetitions=5]
// Starts its own redis-server on a free loopback port (testlib/redis_server.h) and stops it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "floodgate/policy.h"
#include "floodgate/redis_store.h"
#include "store/redis/scripts.h"
#include "testlib/redis_client.h"
#include "testlib/redis_server.h"

namespace {

using namespace std::chrono_literals;
using floodgate::Algorithm;
using floodgate::Policy;
using floodgate::testing::batch_command;
using floodgate::testing::Check;
using floodgate::testing::RedisClient;

constexpr int kChecks = 20'000;
constexpr int kKeys = 1'000;
constexpr int kBatches[] = {1, 8, 40};
constexpr Algorithm kAlgorithms[] = {
    Algorithm::kTokenBucket,      Algorithm::kGcra,
    Algorithm::kLeakyBucket,      Algorithm::kFixedWindow,
    Algorithm::kSlidingWindowLog, Algorithm::kSlidingWindowCounter,
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// evalsha_usec(): Redis' total time in EVALSHA since the last CONFIG RESETSTAT.
double evalsha_usec(RedisClient& redis) {
  const auto info = redis.command({"INFO", "commandstats"});
  const std::string text(info->str, info->len);
  const std::size_t at = text.find("cmdstat_evalsha:");
  const std::size_t usec = text.find("usec=", at);
  if (at == std::string::npos || usec == std::string::npos) {
    std::fprintf(stderr, "no cmdstat_evalsha in INFO commandstats\n");
    std::exit(1);
  }
  return std::stod(text.substr(usec + 5));
}

Policy policy_of(Algorithm a) {
  constexpr std::int64_t kLimit = 100;  // every check is admitted (20 per key)
  switch (a) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(kLimit, kLimit / 60.0).value();
    case Algorithm::kGcra:
      return Policy::gcra(kLimit, 1min).value();
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(kLimit, kLimit / 60.0).value();
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(kLimit, 1min).value();
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(kLimit, 1min).value();
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(kLimit, 1min).value();
  }
  std::abort();
}

// us_per_check(): Redis' time per check for kChecks checks sent as calls of `per_call`, every
// reply checked, on keys cleared first.
double us_per_check(RedisClient& redis, Algorithm a, int per_call) {
  const Policy policy = policy_of(a);
  const std::string sha = redis.load(floodgate::redis::script_text(a, /*test_time=*/false));
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(floodgate::RedisStore::redis_key(a, "bench:" + std::to_string(i)));
  }
  for (const std::string& k : keys) redis.append({"DEL", k, k + ":m"});
  for (std::size_t i = 0; i < keys.size(); ++i) redis.read();
  redis.command({"CONFIG", "RESETSTAT"});
  for (int i = 0; i < kChecks; i += per_call) {
    std::vector<Check> checks;
    for (int j = i; j < i + per_call; ++j) {
      checks.push_back({policy, keys[static_cast<std::size_t>(j * 7919 % kKeys)], 1});
    }
    redis.append(batch_command(sha, checks, ""));
  }
  for (int i = 0; i < kChecks; i += per_call) {
    const auto r = redis.read();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != static_cast<std::size_t>(6 * per_call)) {
      std::fprintf(stderr, "%s: unexpected reply %s\n", std::string(to_string(a)).c_str(),
                   r->type == REDIS_REPLY_ERROR ? r->str : "");
      std::exit(1);
    }
  }
  return evalsha_usec(redis) / kChecks;
}

// full_log_us_per_call(): Redis' time per call on a full sliding log of kMaxLogLimit entries, 200
// calls 10 us apart, so one entry expires under each; costs 1 and 3 alternately, some of the 3s
// denied.
double full_log_us_per_call(RedisClient& redis) {
  const Policy policy =
      Policy::sliding_window_log(static_cast<std::int64_t>(floodgate::kMaxLogLimit),
                                 std::chrono::hours(1))
          .value();
  const std::string sha =
      redis.load(floodgate::redis::script_text(Algorithm::kSlidingWindowLog, /*test_time=*/true));
  const std::string key = "fg:swl:{bench-full-log}";
  redis.command({"DEL", key, key + ":m"});
  const std::int64_t first = 1'780'000'000'000'000;  // 2026, in microseconds
  std::int64_t now = first;
  for (std::uint64_t i = 0; i < floodgate::kMaxLogLimit; ++i) {
    redis.append(batch_command(sha, {Check{policy, key, 1}}, std::to_string(now)));
    now += 10;
  }
  for (std::uint64_t i = 0; i < floodgate::kMaxLogLimit; ++i) redis.read();
  now = first + 3'600'000'000 - 10;  // the next call is when the first entry leaves the window
  constexpr int kCalls = 200;
  redis.command({"CONFIG", "RESETSTAT"});
  for (int i = 0; i < kCalls; ++i) {
    now += 10;
    const auto r = redis.command(
        batch_command(sha, {Check{policy, key, i % 2 == 0 ? 1u : 3u}}, std::to_string(now)));
    if (r->type != REDIS_REPLY_ARRAY) {
      std::fprintf(stderr, "full log: unexpected reply %s\n",
                   r->type == REDIS_REPLY_ERROR ? r->str : "");
      std::exit(1);
    }
  }
  const double us = evalsha_usec(redis) / kCalls;
  redis.command({"DEL", key, key + ":m"});
  return us;
}

}  // namespace

int main(int argc, char** argv) {
  const int repetitions = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  floodgate::testing::RedisServer server;
  RedisClient redis(server.port());
  std::printf(
      "redis-server on 127.0.0.1:%d, %d repetitions, %u cores; Redis' own time in EVALSHA\n",
      server.port(), repetitions, std::thread::hardware_concurrency());
  std::printf("%-24s %14s %14s %14s %10s\n", "us per check", "1 per call", "8 per call",
              "40 per call", "40 vs 1");
  for (const Algorithm a : kAlgorithms) {
    std::vector<std::vector<double>> runs(std::size(kBatches));
    for (int r = 0; r < repetitions; ++r) {
      for (std::size_t b = 0; b < std::size(kBatches); ++b) {
        runs[b].push_back(us_per_check(redis, a, kBatches[b]));
      }
    }
    const double one = median(runs[0]);
    const double forty = median(runs[2]);
    std::printf("%-24s %14.2f %14.2f %14.2f %9.2fx\n", std::string(to_string(a)).c_str(), one,
                median(runs[1]), forty, one / forty);
  }
  std::vector<double> full;
  for (int r = 0; r < repetitions; ++r) full.push_back(full_log_us_per_call(redis));
  std::printf("sliding_window_log at %llu entries: %.1f us per call (median)\n",
              static_cast<unsigned long long>(floodgate::kMaxLogLimit), median(full));
  return 0;
}
