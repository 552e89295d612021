// File: testlib/redis_client.h
//
// RedisClient: a blocking hiredis connection for tests and benches that talk to a redis-server
// directly (append() + read() pipeline), and the EVALSHA commands of the store's scripts
// (store/redis/scripts.h) built from a policy, a key and a cost.
//
// Example:
//   testing::RedisClient redis(server.port());
//   const std::string sha = redis.load(redis::script_text(Algorithm::kGcra, false));
//   testing::Reply r = redis.command(testing::eval_command(sha, policy, key, now, 1));
#pragma once

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/policy.h"
#include "store/redis/scripts.h"

namespace floodgate::testing {

struct FreeReply {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, FreeReply>;

class RedisClient {
 public:
  explicit RedisClient(int port) : context_(redisConnect("127.0.0.1", port)) {
    if (!context_ || context_->err != 0) {
      throw std::runtime_error("cannot connect to redis on port " + std::to_string(port));
    }
  }

  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (redisAppendCommandArgv(context_.get(), static_cast<int>(args.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      throw std::runtime_error("redisAppendCommandArgv failed");
    }
  }
  Reply read() {
    void* reply = nullptr;
    if (redisGetReply(context_.get(), &reply) != REDIS_OK || reply == nullptr) {
      throw std::runtime_error(std::string("redis connection failed: ") + context_->errstr);
    }
    return Reply(static_cast<redisReply*>(reply));
  }
  Reply command(const std::vector<std::string>& args) {
    append(args);
    return read();
  }
  std::int64_t integer(const std::vector<std::string>& args) {
    Reply r = command(args);
    if (r->type != REDIS_REPLY_INTEGER) throw std::runtime_error("not an integer: " + args[0]);
    return r->integer;
  }
  std::string load(std::string_view script) {
    Reply r = command({"SCRIPT", "LOAD", std::string(script)});
    if (r->type != REDIS_REPLY_STRING) {
      throw std::runtime_error(std::string("SCRIPT LOAD failed: ") +
                               (r->type == REDIS_REPLY_ERROR ? r->str : "?"));
    }
    return std::string(r->str, r->len);
  }

 private:
  struct FreeContext {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, FreeContext> context_;
};

// One check of a call: its policy (all of one algorithm in a call), key and cost.
struct Check {
  Policy policy;
  std::string key;
  std::uint64_t cost = 0;
};

// batch_command(): EVALSHA deciding `checks` in one call (scripts.h): each check's key(s), then
// the time, then each check's cost, limit and two parameters. node_wide: the Redis Cluster form,
// no KEYS, the keys after the arguments.
inline std::vector<std::string> batch_command(const std::string& sha,
                                              const std::vector<Check>& checks,
                                              const std::string& now, bool node_wide = false) {
  const auto per_check =
      static_cast<std::size_t>(redis::key_count(checks.front().policy.algorithm()));
  std::vector<std::string> args = {"EVALSHA", sha,
                                   node_wide ? "0" : std::to_string(per_check * checks.size())};
  auto push_keys = [&] {
    for (const Check& c : checks) {
      args.push_back(c.key);
      if (per_check == 2) args.push_back(c.key + ":m");
    }
  };
  if (!node_wide) push_keys();
  args.push_back(now);
  for (const Check& c : checks) {
    const Algorithm a = c.policy.algorithm();
    args.push_back(std::to_string(c.cost));
    args.push_back(std::to_string(c.policy.limit()));
    if (a == Algorithm::kTokenBucket || a == Algorithm::kGcra || a == Algorithm::kLeakyBucket) {
      args.push_back(std::to_string(c.policy.interval()));
      args.push_back(std::to_string(c.policy.ticks_per_us()));
    } else {
      args.push_back(std::to_string(c.policy.window().count()));
      args.push_back(a == Algorithm::kSlidingWindowCounter ? std::to_string(c.policy.weight_shift())
                                                           : "0");
    }
  }
  if (node_wide) push_keys();
  return args;
}

// eval_command(): one check alone.
inline std::vector<std::string> eval_command(const std::string& sha, const Policy& policy,
                                             const std::string& key, const std::string& now,
                                             std::uint64_t cost) {
  return batch_command(sha, {Check{policy, key, cost}}, now);
}

}  // namespace floodgate::testing
