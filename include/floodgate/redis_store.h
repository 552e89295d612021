// File: floodgate/redis_store.h
//
// RedisStore: the shared store. Every decision is one Lua script (one per algorithm, embedded in
// the binary) run atomically by Redis at Redis' own time (TIME), so any number of floodgate
// instances asking the same Redis agree exactly and never race.
//
// The client is asynchronous and multiplexed: a few connections, each with many requests in
// flight; checks submitted while a write is on its way go out together in the next one
// (pipelining). Scripts are called with EVALSHA and resent as EVAL when Redis answers NOSCRIPT
// (after SCRIPT FLUSH or a restart). Each call has a deadline (`timeout`); connections that fail
// are re-established with exponential backoff and jitter; a circuit breaker stops sending after
// `breaker_failures` consecutive failures and lets one probe through every `breaker_cooldown`.
// When the store cannot decide, an Outcome says so (kUnavailable, kTimeout) and the caller applies
// its failure mode (Limiter::settle()).
//
// Keys: "fg:<algorithm>:{<key>}" — namespaced, hash-tagged (one decision, one cluster slot) and
// bounded: a key longer than 128 bytes, or one holding a brace or starting with '#', is replaced
// by "#" and the hex of its 128-bit XXH3 hash.
//
// Example:
//   auto options = floodgate::parse_redis_url("redis://:secret@127.0.0.1:6379/0").value();
//   floodgate::RedisStore store(options);
//   floodgate::Limiter limiter(store);
//   auto outcome = limiter.check("user:42", policy);  // blocks; fronts use check_async()
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "floodgate/clock.h"
#include "floodgate/policy.h"
#include "floodgate/store.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace floodgate {
namespace redis {
struct StoreImpl;
}  // namespace redis

struct RedisOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // an ACL user; empty: AUTH with the password alone
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT on connect when not 0
  bool tls = false;      // rediss://
  // unix:///path/to/redis.sock: a local Redis through its Unix socket (`host`/`port` are not
  // used; no TLS). Empty: TCP.
  std::string unix_socket;
  bool tls_verify = true;
  std::string tls_ca_file;  // empty: the system's CA store

  // Redis Sentinel (redis+sentinel://): the sentinels that know where `sentinel_master` is. When
  // set, `host`/`port` are not used: the store asks a sentinel for the master, follows its
  // +switch-master announcements, and asks again when its connections to the master fail.
  std::vector<std::pair<std::string, std::uint16_t>> sentinels;
  std::string sentinel_master;
  std::string sentinel_password;  // AUTH to the sentinels; empty: none

  // Redis Cluster (redis+cluster://): any nodes of the cluster; the store asks them for the slot
  // map and keeps connections (pool_size each) to every master. `host`/`port` and `db` are not
  // used (a cluster has database 0 only).
  std::vector<std::pair<std::string, std::uint16_t>> cluster_seeds;
  // How often the slot map is asked for while every master answers (MOVED, a master down or a
  // slot without a master ask sooner). Tests that move slots by hand set it long, so that only
  // the redirects they provoke teach the store the new map.
  std::chrono::milliseconds cluster_refresh{5000};

  int pool_size = 2;                                // connections
  std::chrono::milliseconds timeout{10};            // per call (STORE_TIMEOUT_MS)
  std::chrono::milliseconds connect_timeout{1000};  // TCP connect + TLS + AUTH + script loading
  std::chrono::milliseconds backoff_min{25};
  std::chrono::milliseconds backoff_max{1000};
  int breaker_failures = 5;
  std::chrono::milliseconds breaker_cooldown{250};
  std::size_t max_in_flight = 16384;  // per connection; beyond it checks fail fast
  // Checks made on an adopted loop (adopt()) during one turn of it go out as one script call per
  // algorithm, up to this many checks each (1: one call per check).
  std::size_t max_batch = 64;

  // Tests only: the scripts' time comes from this clock instead of Redis TIME (and the scripts
  // are loaded in their test variant, which honours it). Never set in a service.
  const Clock* test_clock = nullptr;

  // Told about connection state changes and errors ("warn"/"info", message). Optional; called
  // from the store's thread.
  std::function<void(std::string_view level, std::string_view message)> log;
};

// parse_redis_url(): redis://[user:password@]host[:port][/db] and rediss:// (TLS). A password
// alone may be given as "redis://:password@host". Also
// redis+sentinel://[user:password@]host:port[,host:port...]/master-name[/db]: the sentinels and
// the name they monitor the master under (the credentials and db are the master's); and
// redis+cluster://[user:password@]host:port[,host:port...]: seed nodes of a Redis Cluster; and
// unix://[user:password@]/path/to/redis.sock[?db=N]: a local Redis's Unix socket. Errors name the
// field "REDIS_URL".
Result<RedisOptions> parse_redis_url(std::string_view url);

// RedisValue: a reply to RedisStore::command(), in plain C++ types.
struct RedisValue {
  enum class Type : std::uint8_t { kNil, kInteger, kString, kStatus, kError, kArray, kFailed };
  Type type = Type::kNil;
  std::int64_t integer = 0;
  std::string text;  // kString, kStatus, kError; kFailed: why the command got no reply
  std::vector<RedisValue> elements;
  StoreStatus failure = StoreStatus::kOk;  // kFailed: kTimeout or kUnavailable

  bool ok() const { return type != Type::kError && type != Type::kFailed; }
};

class RedisStore final : public Store {
 public:
  // Starts connecting at once, in the background; checks fail (kUnavailable) until connected.
  explicit RedisStore(RedisOptions options);
  // Fails whatever is still in flight and stops the store's thread.
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  void check(std::span<const CheckOp> ops, std::span<Outcome> outcomes, Completion& done) override;
  std::string_view name() const override { return "redis"; }
  StoreHealth health() const override;
  // reset(): one DEL of the key's state under every algorithm (one hash tag: one slot).
  void reset(std::string_view key, std::function<void(StoreStatus)> done) override;
  void append_metrics(std::string& out) const override;

  // adopt(): opens a connection that lives on `io`, an event loop run by one thread (a server
  // worker's), and sends the checks made on that thread through it, so the answer comes back on
  // the same thread with no hand-off between threads (the pool's connections remain the
  // fallback). Call it on the loop's thread; release(io), also on that thread, closes the
  // connection so the loop can end. The connection object itself lives until the store is
  // destroyed, so `io` must outlive the store (declare the io_context first).
  void adopt(boost::asio::io_context& io);
  void release(boost::asio::io_context& io);

  // command(): one command beside the decisions (the admin API's shared state): sent on the
  // store's connections (in a cluster, to the master of `routing_key`'s hash slot, following
  // MOVED and ASK), with its own `timeout`. `done` runs exactly once, on the store's thread: with
  // the reply (an error reply as kError), or kFailed when none came. Thread-safe.
  void command(std::vector<std::string> args, std::string routing_key,
               std::chrono::milliseconds timeout, std::function<void(RedisValue)> done);

  // subscribe(): stays subscribed to `channel` on a connection of its own (plain TCP; a rediss://
  // store cannot subscribe and relies on its caller's polling), reconnecting with backoff.
  // `on_message` gets each message's payload; `on_subscribed` runs after every (re)subscription,
  // when messages may have been missed. Both run on the store's thread. Call at most once.
  void subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                 std::function<void()> on_subscribed);

  // wait_connected(): whether at least one connection is ready within `limit` (startup, tests).
  bool wait_connected(std::chrono::milliseconds limit) const;
  // wait_started(): at start, waits until a connection is ready, an attempt has failed (not
  // behind Sentinel, where attempts fail until a sentinel names the master), or `limit` has
  // passed; the health then.
  StoreHealth wait_started(std::chrono::milliseconds limit) const;

  // script_sha(): the SHA1 Redis knows the production script of `algorithm` by (EVALSHA).
  static std::string script_sha(Algorithm algorithm);

  // redis_key(): the Redis key a check of `key` under `algorithm` uses (see the file comment);
  // redis_key_into() writes it over `out`, reusing its capacity.
  static std::string redis_key(Algorithm algorithm, std::string_view key);
  static void redis_key_into(std::string& out, Algorithm algorithm, std::string_view key);

 private:
  std::unique_ptr<redis::StoreImpl> impl_;
};

}  // namespace floodgate
