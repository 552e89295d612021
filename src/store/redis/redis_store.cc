#include "floodgate/redis_store.h"

#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <charconv>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/container/small_vector.hpp>

#include "core/key_hash.h"
#include "store/redis/circuit_breaker.h"
#include "store/redis/cluster.h"
#include "store/redis/cluster_slot.h"
#include "store/redis/connection.h"
#include "store/redis/resp.h"
#include "store/redis/scripts.h"
#include "store/redis/sentinel.h"
#include "store/redis/subscriber.h"

namespace floodgate {
namespace {

namespace asio = boost::asio;
using redis::Call;
using redis::CircuitBreaker;
using redis::Connection;
using redis::Reply;
using redis::SteadyTime;

constexpr auto kRelaxed = std::memory_order_relaxed;
// Commands beside the decisions (reset, the admin side's state) wait at least this long.
constexpr std::chrono::milliseconds kAdminTimeout{1000};

// Short names keep keys (and Redis' memory per key) small.
std::string_view short_name(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kTokenBucket:
      return "tb";
    case Algorithm::kGcra:
      return "gcra";
    case Algorithm::kLeakyBucket:
      return "lb";
    case Algorithm::kFixedWindow:
      return "fw";
    case Algorithm::kSlidingWindowLog:
      return "swl";
    case Algorithm::kSlidingWindowCounter:
      return "swc";
  }
  return "x";
}

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i)
    fmt::format_to(std::back_inserter(hex), "{:02x}", digest[i]);
  return hex;
}

// Error kinds counted in floodgate_store_errors_total.
enum ErrorKind : std::size_t {
  kErrTimeout,
  kErrNotConnected,
  kErrCircuitOpen,
  kErrOverloaded,
  kErrOom,
  kErrScript,
  kErrKinds
};
constexpr std::array<std::string_view, kErrKinds> kErrorNames = {
    "timeout", "not_connected", "circuit_open", "overloaded", "oom", "redis_error"};

constexpr std::array<double, 12> kLatencyBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                    0.005,   0.01,   0.025,   0.05,   0.1,   0.25};

// Cluster answers counted in floodgate_store_cluster_redirects_total.
// kNotLocal: a check of a node-wide call (send_to_cluster) whose key the node did not serve.
enum RedirectKind : std::size_t {
  kMoved,
  kAsk,
  kTryAgain,
  kClusterDown,
  kNotLocal,
  kRedirectKinds
};
constexpr std::array<std::string_view, kRedirectKinds> kRedirectNames = {
    "moved", "ask", "tryagain", "clusterdown", "not_local"};

// Target: where a call goes in a cluster: the master of its slot, or after ASK the node importing
// the slot (with ASKING first). A null node: a standalone Redis (the lane or the pool).
struct Target {
  redis::ClusterRouter::Node* node = nullptr;
  bool asking = false;
};

struct Batch {
  std::atomic<std::size_t> remaining;
  Completion* done;
};

class ScriptCall;

}  // namespace

// Lane: a connection adopted by a thread's own event loop (RedisStore::adopt), and the checks made
// on that thread waiting to go out together. Touched only by that thread (but for `connection`'s
// thread-safe members).
namespace redis {
struct Lane {
  asio::io_context* io = nullptr;
  std::unique_ptr<Connection> connection;
  std::array<std::vector<ScriptCall*>, kAlgorithmCount> pending;
  bool seal_posted = false;
};
}  // namespace redis

namespace {

// The lane the calling thread adopted, and the store it belongs to.
struct ThreadLane {
  const void* store = nullptr;
  redis::Lane* lane = nullptr;
};
thread_local ThreadLane this_thread_lane;

}  // namespace

struct redis::StoreImpl {
  struct Script {
    std::string text;
    std::string sha;
    int keys = 1;
  };

  RedisOptions options;
  std::array<Script, kAlgorithmCount> scripts;
  std::vector<std::string> handshake;  // SCRIPT LOAD of every script
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  // Where the connections go: the options' address, or the master Sentinel points at.
  redis::Endpoint endpoint{options.unix_socket.empty() ? options.host : options.unix_socket,
                           options.unix_socket.empty() ? options.port : std::uint16_t{0}};
  std::unique_ptr<redis::SentinelWatcher> sentinel;      // redis+sentinel:// only
  std::vector<std::unique_ptr<Connection>> connections;  // the pool, on `io` (not in a cluster)
  std::unique_ptr<redis::ClusterRouter> cluster;         // redis+cluster:// only
  std::unique_ptr<redis::Subscriber> subscriber;         // subscribe(); io thread after start

  // Lanes: connections adopted by other threads' event loops (RedisStore::adopt).
  using Lane = redis::Lane;
  mutable std::mutex lanes_mu;
  std::vector<std::unique_ptr<Lane>> lanes;  // guarded by lanes_mu; a Lane never moves
  std::atomic<std::size_t> next{0};
  CircuitBreaker breaker;
  std::thread thread;

  // metrics
  std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> latency{};
  std::atomic<std::uint64_t> latency_sum_us{0};
  std::atomic<std::uint64_t> latency_count{0};
  std::array<std::atomic<std::uint64_t>, kErrKinds> errors{};
  std::atomic<std::uint64_t> noscript_reloads{0};
  std::array<std::atomic<std::uint64_t>, kRedirectKinds> redirects{};

  std::mutex error_log_mu;
  std::string last_error_kind;                              // guarded by error_log_mu
  std::chrono::steady_clock::time_point last_error_logged;  // guarded by error_log_mu
  std::uint64_t errors_not_logged = 0;                      // guarded by error_log_mu

  mutable std::mutex state_mu;
  std::string last_error;       // guarded by state_mu
  bool auth_failed = false;     // guarded by state_mu
  bool ever_connected = false;  // guarded by state_mu

  explicit StoreImpl(RedisOptions o)
      : options(std::move(o)),
        breaker(options.breaker_failures,
                std::chrono::duration_cast<std::chrono::microseconds>(options.breaker_cooldown)
                    .count()) {
    const bool test_time = options.test_clock != nullptr;
    for (int a = 0; a < kAlgorithmCount; ++a) {
      const auto algorithm = static_cast<Algorithm>(a);
      Script& s = scripts[static_cast<std::size_t>(a)];
      s.text = std::string(redis::script_text(algorithm, test_time));
      s.sha = sha1_hex(s.text);
      s.keys = redis::key_count(algorithm);
      std::string load;
      const std::string_view args[] = {"SCRIPT", "LOAD", s.text};
      redis::append_command(load, args);
      handshake.push_back(std::move(load));
    }
    if (options.tls) {
      if (options.tls_ca_file.empty()) {
        ssl.set_default_verify_paths();
      } else {
        ssl.load_verify_file(options.tls_ca_file);
      }
      ssl.set_verify_mode(options.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    }
    if (!options.cluster_seeds.empty()) {
      cluster = std::make_unique<redis::ClusterRouter>(
          io, options, ssl, handshake,
          [this](std::string_view level, std::string_view message) { log(level, message); },
          [this] {
            std::lock_guard lock(state_mu);
            ever_connected = true;
          });
      cluster->start();
    }
    const int pool = cluster ? 0 : std::max(1, options.pool_size);
    for (int i = 0; i < pool; ++i) {
      connections.push_back(std::make_unique<Connection>(
          io, options, endpoint, ssl, handshake,
          [this](bool ready, const std::string& error) { on_state(ready, error); }));
    }
    if (!options.sentinels.empty()) {
      sentinel = std::make_unique<redis::SentinelWatcher>(
          io, options, endpoint, [this](const std::string&, std::uint16_t) { drop_all(); },
          [this](std::string_view level, std::string_view message) { log(level, message); });
      sentinel->start();
    }
    for (auto& c : connections) c->start();
    thread = std::thread([this] { io.run(); });
  }

  ~StoreImpl() {
    asio::post(io, [this] {
      if (sentinel) sentinel->stop();
      if (subscriber) subscriber->stop();
      if (cluster) cluster->stop();
      for (auto& c : connections) c->stop();
      work.reset();
    });
    thread.join();
  }

  void log(std::string_view level, std::string_view message) const {
    if (options.log) options.log(level, message);
  }

  // drop_all(): every connection reconnects now, to the endpoint's new address.
  void drop_all() {
    for (auto& c : connections) c->drop();
    std::lock_guard lock(lanes_mu);
    for (auto& lane : lanes) lane->connection->drop();
  }

  std::string address() const {
    const auto [host, port] = endpoint.get();
    if (host.empty()) return "(master not known yet)";
    return port == 0 ? "unix:" + host : host + ":" + std::to_string(port);
  }

  void on_state(bool ready, const std::string& error) {
    // A connection to the master failed: the master may have moved (a missed announcement).
    if (!ready && sentinel) sentinel->reask();
    if (ready) {
      // A connection that just completed its handshake (AUTH, scripts) is proof enough that Redis
      // answers: close the breaker rather than wait for a probe that only traffic would send.
      breaker.record_success();
      bool first = false;
      bool was_failing = false;
      {
        std::lock_guard lock(state_mu);
        first = !ever_connected;
        ever_connected = true;
        // Before the first connection, waiting for Sentinel to name the master is no failure.
        was_failing = !last_error.empty() && !(first && last_error == kMasterNotKnown);
        last_error.clear();
        auth_failed = false;
      }
      if (first || was_failing) {
        log("info",
            fmt::format("redis: connected to {}{}", address(), was_failing ? " (recovered)" : ""));
      }
      return;
    }
    // A connection that had been ready and went down, or an attempt that failed.
    bool changed = false;
    bool starting = false;
    {
      std::lock_guard lock(state_mu);
      starting = !ever_connected;
      changed = error != last_error;
      last_error = error;
      auth_failed = error.rfind("AUTH", 0) == 0 || error.find("NOAUTH") != std::string::npos ||
                    error.find("WRONGPASS") != std::string::npos;
    }
    if (!changed) return;
    if (starting && error == kMasterNotKnown) {
      log("info", "redis: waiting for a sentinel to name the master");
    } else {
      log("warn", fmt::format("redis: {}", error));
    }
  }

  void record_latency(SteadyTime sent) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - sent)
                        .count();
    const double seconds = static_cast<double>(us) / 1e6;
    std::size_t b = 0;
    while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
    latency[b].fetch_add(1, kRelaxed);
    latency_sum_us.fetch_add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, us)), kRelaxed);
    latency_count.fetch_add(1, kRelaxed);
  }

  static std::int64_t now_us(SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  }

  // format(): one EVALSHA (or, after NOSCRIPT, EVAL) deciding `ops` in order, all of one
  // algorithm: KEYS are each check's key(s), ARGV the time then (cost, limit, p4, p5) per check.
  // node_wide: no KEYS, the keys after the arguments (scripts.h: a master's checks of any slots).
  void format(std::string& out, std::span<const CheckOp* const> ops, bool full_script,
              bool node_wide = false) const {
    const Algorithm algorithm = ops.front()->policy->algorithm();
    const Script& script = scripts[static_cast<std::size_t>(algorithm)];
    const auto per_check = static_cast<std::size_t>(script.keys);
    // Storage reused from call to call on this thread: the hot path allocates only when a batch
    // is larger than any before it.
    thread_local std::vector<std::string> keys;
    thread_local std::vector<std::array<char, 24>> numbers;
    thread_local std::vector<std::string_view> args;
    keys.resize(std::max(keys.size(), ops.size() * per_check));
    numbers.resize(std::max(numbers.size(), 2 + 4 * ops.size()));
    args.clear();
    std::size_t next_number = 0;
    auto number = [&](std::int64_t v) {
      auto& buffer = numbers[next_number++];
      auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
      return std::string_view(buffer.data(), static_cast<std::size_t>(end - buffer.data()));
    };
    args.push_back(full_script ? "EVAL" : "EVALSHA");
    args.push_back(full_script ? std::string_view(script.text) : std::string_view(script.sha));
    args.push_back(node_wide ? std::string_view("0")
                             : number(static_cast<std::int64_t>(ops.size() * per_check)));
    auto push_keys = [&] {
      for (std::size_t i = 0; i < ops.size(); ++i) {
        std::string& key = keys[i * per_check];
        RedisStore::redis_key_into(key, algorithm, ops[i]->key);
        args.push_back(key);
        if (per_check > 1) {
          std::string& meta = keys[i * per_check + 1];
          meta.assign(key).append(":m");
          args.push_back(meta);
        }
      }
    };
    if (!node_wide) push_keys();
    args.push_back(options.test_clock ? number(options.test_clock->now().count())
                                      : std::string_view());
    for (const CheckOp* op : ops) {
      const Policy& policy = *op->policy;
      args.push_back(number(static_cast<std::int64_t>(op->cost)));
      args.push_back(number(static_cast<std::int64_t>(policy.limit())));
      switch (algorithm) {
        case Algorithm::kTokenBucket:
        case Algorithm::kGcra:
        case Algorithm::kLeakyBucket:
          args.push_back(number(policy.interval()));
          args.push_back(number(policy.ticks_per_us()));
          break;
        case Algorithm::kFixedWindow:
        case Algorithm::kSlidingWindowLog:
          args.push_back(number(policy.window().count()));
          args.push_back("0");
          break;
        case Algorithm::kSlidingWindowCounter:
          args.push_back(number(policy.window().count()));
          args.push_back(number(policy.weight_shift()));
          break;
      }
    }
    if (node_wide) push_keys();
    redis::append_command(out, args);
  }

  // seal(): sends the checks `lane` collected during this turn of its loop, one script call per
  // algorithm and per max_batch checks. Runs on the lane's thread.
  void seal(Lane& lane);
  void send_batches(std::array<std::vector<ScriptCall*>, kAlgorithmCount>& pending);
  // send_to_cluster(): the same for a cluster: one node-wide call per master and algorithm.
  void send_to_cluster(std::array<std::vector<ScriptCall*>, kAlgorithmCount>& pending);
  // script_error(): counts (once per check of the call) and logs an error reply (OOM, BUSY, a
  // script error).
  void script_error(std::string_view error, std::size_t checks);

  // Checks from threads without a lane (gRPC's, a library caller's) wait here for the store's
  // own loop, which sends what gathered since its last turn as batches through the pool: under
  // load, one script call carries many checks instead of one each.
  std::mutex shared_mu;
  std::array<std::vector<ScriptCall*>, kAlgorithmCount> shared_pending;  // guarded by shared_mu
  bool shared_seal_posted = false;                                       // guarded by shared_mu
  void seal_shared();

  // for_each_connection(): the pool's and the lanes'.
  template <class Fn>
  void for_each_connection(Fn fn) const {
    if (cluster) cluster->for_each_connection(fn);
    for (const auto& c : connections) fn(*c);
    std::lock_guard lock(lanes_mu);
    for (const auto& lane : lanes) fn(*lane->connection);
  }

  // submit(): hands `call` to `target` in a cluster; elsewhere to this thread's lane when it has
  // one, else to a ready connection of the pool (round robin). Null when none takes it; its
  // `checks` are then counted as not_connected or overloaded (none for an admin command).
  Connection* submit(std::string_view command, Call* call, const Target& target,
                     std::size_t checks);
  Connection* submit(std::string_view command, Call* call, std::size_t checks) {
    if (this_thread_lane.store == this) {
      Connection* lane = this_thread_lane.lane->connection.get();
      if (lane->ready() && lane->submit(command, call)) return lane;
    }
    // Every call of one turn of the store's loop goes to the same connection (`next` moves once
    // per turn, in seal_shared()): one write, and the checks of one batch decided in their order.
    const std::size_t count = connections.size();
    const std::size_t first = next.load(kRelaxed);
    bool overloaded = false;
    for (std::size_t k = 0; k < count; ++k) {
      Connection& c = *connections[(first + k) % count];
      if (!c.ready()) continue;
      if (c.submit(command, call)) return &c;
      overloaded = true;
    }
    errors[overloaded ? kErrOverloaded : kErrNotConnected].fetch_add(checks, kRelaxed);
    return nullptr;
  }
};

namespace {

// WireCall: one script call on its way to Redis — one check (ScriptCall) or several of one
// algorithm and, in a cluster, one slot (ScriptCalls) — with what it takes to send it again:
// after NOSCRIPT (as EVAL, which loads the script), and in a cluster after MOVED (to the slot's
// new master), ASK (ASKING first, to the node importing the slot) or TRYAGAIN (a moment later).
class WireCall : public Call {
 public:
  explicit WireCall(redis::StoreImpl& store) : store_(store) {}

  void aim(const Target& target) { target_ = target; }

  // send(): formats and submits the call to its target; when no connection takes it, the call
  // fails (every check it carries gets kUnavailable) and is deleted.
  void send() {
    thread_local std::string command;
    command.clear();
    format(command, full_script_);
    if (store_.submit(command, this, target_, checks()) != nullptr) return;
    // An admin command (no checks) leaves the breaker to the decisions (CommandCall).
    if (checks() > 0) {
      breaker().record_failure(redis::StoreImpl::now_us(std::chrono::steady_clock::now()));
    }
    fail_all(StoreStatus::kUnavailable);
  }

  void on_reply(Reply reply) override {
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view error = redis::text(*reply);
      if (sent_again(error)) return;
      store_.script_error(error, checks());
      // CLUSTERDOWN: the node answers at once, for a cluster still electing a master elsewhere;
      // an open circuit on it would only delay its return once the cluster is whole again.
      if (error.rfind("CLUSTERDOWN", 0) != 0) {
        breaker().record_failure(redis::StoreImpl::now_us(std::chrono::steady_clock::now()));
      }
      fail_all(StoreStatus::kUnavailable);
      return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 6 * checks()) {
      store_.errors[kErrScript].fetch_add(checks(), kRelaxed);
      breaker().record_failure(redis::StoreImpl::now_us(std::chrono::steady_clock::now()));
      fail_all(StoreStatus::kUnavailable);
      return;
    }
    breaker().record_success();
    deliver_all(reply->element);
  }

  void on_failure(StoreStatus status) override {
    if (status == StoreStatus::kTimeout) store_.errors[kErrTimeout].fetch_add(checks(), kRelaxed);
    breaker().record_failure(redis::StoreImpl::now_us(std::chrono::steady_clock::now()));
    fail_all(status);
  }

 protected:
  ~WireCall() = default;

  virtual std::size_t checks() const = 0;
  virtual void format(std::string& out, bool full_script) const = 0;
  // deliver_all(): hands each check its six integers; deletes `this`.
  virtual void deliver_all(redisReply* const* elements) = 0;
  // fail_all(): every check gets `status`; deletes `this`.
  virtual void fail_all(StoreStatus status) = 0;

  redis::StoreImpl& store_;

  // sent_again(): true when `error` asks for the call to be sent again and it was (or will be).
  bool sent_again(std::string_view error) {
    if (error.rfind("NOSCRIPT", 0) == 0 && !full_script_) {
      // The script cache was flushed (SCRIPT FLUSH, a restart): EVAL loads it again.
      full_script_ = true;
      store_.noscript_reloads.fetch_add(1, kRelaxed);
      send();
      return true;
    }
    if (!store_.cluster) return false;
    redis::Redirect redirect;
    if (redis::parse_redirect(error, redirect)) {
      if (++redirects_ > kMaxRedirects) return false;
      redis::ClusterRouter::Node* node = nullptr;
      if (redirect.ask) {
        store_.redirects[kAsk].fetch_add(1, kRelaxed);
        node = store_.cluster->node_at(redirect.address);
      } else {
        store_.redirects[kMoved].fetch_add(1, kRelaxed);
        node = store_.cluster->moved(redirect.slot, redirect.address);
      }
      if (node == nullptr) return false;
      target_ = Target{node, redirect.ask};
      // A node just learnt of is still connecting: give it a moment, within the deadline.
      if (node->pick() == nullptr) {
        retry_after(std::chrono::milliseconds(2));
      } else {
        send();
      }
      return true;
    }
    if (error.rfind("TRYAGAIN", 0) == 0) {
      // A multi-key call while the slot's keys are half migrated: the migration moves on. Tried
      // again every 5 ms until the call's deadline.
      store_.redirects[kTryAgain].fetch_add(1, kRelaxed);
      retry_after(std::chrono::milliseconds(5));
      return true;
    }
    if (error.rfind("CLUSTERDOWN", 0) == 0) {
      store_.redirects[kClusterDown].fetch_add(1, kRelaxed);
      store_.cluster->refresh_soon();
    }
    return false;
  }

  redis::CircuitBreaker& breaker() { return target_.node ? target_.node->breaker : store_.breaker; }

 private:
  static constexpr int kMaxRedirects = 5;

  void retry_after(std::chrono::milliseconds delay) {
    if (std::chrono::steady_clock::now() + delay >= deadline) {
      on_failure(StoreStatus::kTimeout);
      return;
    }
    // The store's loop keeps running until the timer fires, even while it stops.
    auto timer = std::make_shared<asio::steady_timer>(store_.io, delay);
    timer->async_wait([this, timer](const boost::system::error_code&) { send(); });
  }

  Target target_;
  bool full_script_ = false;
  int redirects_ = 0;
};

// ScriptCall: one check; sent alone, or as a member of a ScriptCalls.
class ScriptCall final : public WireCall {
 public:
  ScriptCall(redis::StoreImpl& store, const CheckOp& op, Outcome& out, Batch* batch,
             Completion& done)
      : WireCall(store), op_(op), out_(out), batch_(batch), done_(done) {}

  const CheckOp& op() const { return op_; }
  Algorithm algorithm() const { return op_.policy->algorithm(); }

  // slot(): the Redis Cluster hash slot of the check's key(s).
  std::uint16_t slot() const {
    thread_local std::string key;
    RedisStore::redis_key_into(key, algorithm(), op_.key);
    return redis::key_slot(key);
  }

  // queue(): stamps the call as sent now (it goes out with the next batch of its lane or of the
  // store's own loop).
  void queue(SteadyTime now) {
    sent_ = now;
    deadline = now + store_.options.timeout;
  }

  // deliver(): the six integers of this check's decision.
  void deliver(redisReply* const* six) {
    store_.record_latency(sent_);
    std::int64_t v[6];
    for (std::size_t i = 0; i < 6; ++i) {
      const redisReply* e = six[i];
      v[i] = e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
    }
    auto duration = [](std::int64_t us) { return us < 0 ? kNever : Micros{us}; };
    Decision& d = out_.decision;
    d.allowed = v[0] == 1;
    d.reason = v[1] == 1   ? DenyReason::kLimited
               : v[1] == 2 ? DenyReason::kCostExceedsCapacity
                           : DenyReason::kNone;
    d.limit = op_.policy->limit();
    d.remaining = static_cast<std::uint64_t>(std::max<std::int64_t>(0, v[2]));
    d.reset_after = duration(v[3]);
    d.retry_after = duration(v[4]);
    d.delay = duration(v[5]);
    out_.status = StoreStatus::kOk;
    finish();
  }

  // fail(): the check could not be decided (the breaker is told by the call that carried it).
  void fail(StoreStatus status) {
    out_.status = status;
    finish();
  }

  // send_alone(): sends the check on its own to its slot's master as the map has it now, after a
  // node-wide call found its key elsewhere (MOVED or ASK lead it on from there).
  void send_alone() {
    redis::ClusterRouter::Node* node = store_.cluster->route(slot());
    if (node == nullptr) {
      store_.errors[kErrNotConnected].fetch_add(1, kRelaxed);
      fail(StoreStatus::kUnavailable);
      return;
    }
    aim(Target{node, false});
    send();
  }

 private:
  std::size_t checks() const override { return 1; }
  void format(std::string& out, bool full_script) const override {
    const CheckOp* op = &op_;
    store_.format(out, {&op, 1}, full_script);
  }
  void deliver_all(redisReply* const* elements) override { deliver(elements); }
  void fail_all(StoreStatus status) override { fail(status); }

  void finish() {
    Completion& done = done_;
    Batch* batch = batch_;
    delete this;
    if (batch == nullptr) {
      done.complete();
    } else if (batch->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete batch;
      done.complete();
    }
  }

  const CheckOp& op_;
  Outcome& out_;
  Batch* batch_;
  Completion& done_;
  SteadyTime sent_;
};

// ScriptCalls: several checks of one algorithm decided by one script call, in order. In a cluster
// the call is node-wide (scripts.h): one master's checks, of whatever slots; a check whose key the
// master turned out not to serve is sent again on its own, its key declared, so that MOVED or ASK
// lead it to the node that does.
class ScriptCalls final : public WireCall {
 public:
  ScriptCalls(redis::StoreImpl& store, std::vector<ScriptCall*> members, bool node_wide = false)
      : WireCall(store), members_(std::move(members)), node_wide_(node_wide) {
    deadline = SteadyTime::max();
    ops_.reserve(members_.size());
    for (ScriptCall* m : members_) {
      deadline = std::min(deadline, m->deadline);
      ops_.push_back(&m->op());
    }
  }

 private:
  std::size_t checks() const override { return members_.size(); }
  void format(std::string& out, bool full_script) const override {
    store_.format(out, ops_, full_script, node_wide_);
  }
  void deliver_all(redisReply* const* elements) override {
    bool stale = false;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      redisReply* const* six = elements + 6 * i;
      const std::int64_t allowed = six[0]->type == REDIS_REPLY_INTEGER ? six[0]->integer : 0;
      if (allowed >= 0) {
        members_[i]->deliver(six);
      } else if (allowed == -2) {
        // The node found the cluster down (CLUSTERDOWN to a call with keys): no use sending it on.
        store_.redirects[kClusterDown].fetch_add(1, kRelaxed);
        stale = true;
        members_[i]->fail(StoreStatus::kUnavailable);
      } else {
        store_.redirects[kNotLocal].fetch_add(1, kRelaxed);
        stale = true;
        members_[i]->send_alone();
      }
    }
    if (stale) store_.cluster->refresh_soon();
    delete this;
  }
  void fail_all(StoreStatus status) override {
    for (ScriptCall* m : members_) m->fail(status);
    delete this;
  }

  std::vector<ScriptCall*> members_;
  std::vector<const CheckOp*> ops_;
  bool node_wide_;
};

// CommandCall: one command beside the decisions (RedisStore::command): its reply, whatever its
// type, goes to the caller; it follows MOVED, ASK and TRYAGAIN like a script call. Its replies and
// timeouts do not move the circuit breaker: the admin side's rare commands (an error reply is a
// legitimate answer to them) must not open it for the checks.
class CommandCall final : public WireCall {
 public:
  CommandCall(redis::StoreImpl& store, std::string command, std::function<void(RedisValue)> done,
              SteadyTime until)
      : WireCall(store), command_(std::move(command)), done_(std::move(done)) {
    deadline = until;
  }

  void on_reply(Reply reply) override {
    if (reply->type == REDIS_REPLY_ERROR && sent_again(redis::text(*reply))) return;
    auto done = std::move(done_);
    delete this;
    done(convert(*reply));
  }
  void on_failure(StoreStatus status) override { fail_all(status); }

 private:
  static RedisValue convert(const redisReply& r) {
    RedisValue v;
    switch (r.type) {
      case REDIS_REPLY_INTEGER:
        v.type = RedisValue::Type::kInteger;
        v.integer = r.integer;
        break;
      case REDIS_REPLY_STRING:
        v.type = RedisValue::Type::kString;
        v.text = std::string(redis::text(r));
        break;
      case REDIS_REPLY_STATUS:
        v.type = RedisValue::Type::kStatus;
        v.text = std::string(redis::text(r));
        break;
      case REDIS_REPLY_ERROR:
        v.type = RedisValue::Type::kError;
        v.text = std::string(redis::text(r));
        break;
      case REDIS_REPLY_ARRAY:
        v.type = RedisValue::Type::kArray;
        v.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) v.elements.push_back(convert(*r.element[i]));
        break;
      default:
        break;  // nil
    }
    return v;
  }

  std::size_t checks() const override { return 0; }
  void format(std::string& out, bool /*full_script*/) const override { out += command_; }
  void deliver_all(redisReply* const* /*elements*/) override {}  // on_reply() is overridden
  void fail_all(StoreStatus status) override {
    auto done = std::move(done_);
    delete this;
    RedisValue v;
    v.type = RedisValue::Type::kFailed;
    v.failure = status;
    v.text = status == StoreStatus::kTimeout ? "timed out" : "not connected";
    done(std::move(v));
  }

  std::string command_;
  std::function<void(RedisValue)> done_;
};

// AskingCall: the reply to the ASKING sent before a call redirected by ASK; nothing to do.
class AskingCall final : public Call {
 public:
  explicit AskingCall(SteadyTime until) { deadline = until; }
  void on_reply(Reply) override { delete this; }
  void on_failure(StoreStatus) override { delete this; }
};

}  // namespace

redis::Connection* redis::StoreImpl::submit(std::string_view command, Call* call,
                                            const Target& target, std::size_t checks) {
  if (target.node == nullptr) return submit(command, call, checks);
  Connection* c = target.node->pick();
  if (c == nullptr) {
    errors[kErrNotConnected].fetch_add(checks, kRelaxed);
    return nullptr;
  }
  if (!target.asking) {
    if (c->submit(command, call)) return c;
  } else {
    static const std::string kAsking = [] {
      std::string asking;
      const std::string_view args[] = {"ASKING"};
      redis::append_command(asking, args);
      return asking;
    }();
    auto* asking = new AskingCall(call->deadline);
    if (c->submit(kAsking, asking, command, call)) return c;
    delete asking;
  }
  errors[kErrOverloaded].fetch_add(checks, kRelaxed);
  return nullptr;
}

void redis::StoreImpl::script_error(std::string_view error, std::size_t checks) {
  errors[error.rfind("OOM", 0) == 0 ? kErrOom : kErrScript].fetch_add(checks, kRelaxed);
  // One line per kind of error and second: an outage answers every call with the same error.
  const auto now = std::chrono::steady_clock::now();
  const std::string_view kind = error.substr(0, error.find(' '));
  std::uint64_t suppressed = 0;
  {
    std::lock_guard lock(error_log_mu);
    if (kind == last_error_kind && now - last_error_logged < std::chrono::seconds(1)) {
      ++errors_not_logged;
      return;
    }
    last_error_kind.assign(kind);
    last_error_logged = now;
    suppressed = std::exchange(errors_not_logged, 0);
  }
  log("warn", suppressed == 0 ? fmt::format("redis: script error: {}", error)
                              : fmt::format("redis: script error: {} ({} more errors not logged)",
                                            error, suppressed));
  // A replica answers writes with READONLY: the master we know was demoted.
  if (kind == "READONLY") {
    if (sentinel) sentinel->reask();
    if (cluster) cluster->refresh_soon();
  }
}

void redis::StoreImpl::seal(Lane& lane) {
  lane.seal_posted = false;
  send_batches(lane.pending);
}

void redis::StoreImpl::seal_shared() {
  std::array<std::vector<ScriptCall*>, kAlgorithmCount> pending;
  {
    std::lock_guard lock(shared_mu);
    shared_seal_posted = false;
    std::swap(pending, shared_pending);
  }
  next.fetch_add(1, kRelaxed);
  if (cluster) {
    cluster->rotate();
    send_to_cluster(pending);
  } else {
    send_batches(pending);
  }
}

void redis::StoreImpl::send_batches(std::array<std::vector<ScriptCall*>, kAlgorithmCount>& all) {
  const std::size_t most = std::max<std::size_t>(1, options.max_batch);
  for (auto& pending : all) {
    for (std::size_t from = 0; from < pending.size(); from += most) {
      const std::size_t to = std::min(pending.size(), from + most);
      if (to - from == 1) {
        pending[from]->send();
        continue;
      }
      auto* calls = new ScriptCalls(
          *this, std::vector<ScriptCall*>(pending.begin() + static_cast<std::ptrdiff_t>(from),
                                          pending.begin() + static_cast<std::ptrdiff_t>(to)));
      calls->send();
    }
    pending.clear();
  }
}

void redis::StoreImpl::send_to_cluster(std::array<std::vector<ScriptCall*>, kAlgorithmCount>& all) {
  // A cluster refuses a script call whose declared keys are in different slots (CROSSSLOT), but a
  // script may touch undeclared keys of any slot its node serves: checks go in one node-wide call
  // per master (scripts.h), a check alone with its key declared (MOVED and ASK need a key).
  const std::size_t most = std::max<std::size_t>(1, options.max_batch);
  const std::int64_t now = now_us(std::chrono::steady_clock::now());
  thread_local std::vector<std::pair<ClusterRouter::Node*, ScriptCall*>> routed;
  for (auto& pending : all) {
    routed.clear();
    for (ScriptCall* call : pending) {
      ClusterRouter::Node* node = cluster->route(call->slot());
      if (node == nullptr) {
        errors[kErrNotConnected].fetch_add(1, kRelaxed);
        cluster->refresh_soon();
        call->fail(StoreStatus::kUnavailable);
      } else if (!node->breaker.allow(now)) {
        errors[kErrCircuitOpen].fetch_add(1, kRelaxed);
        call->fail(StoreStatus::kUnavailable);
      } else {
        routed.emplace_back(node, call);
      }
    }
    pending.clear();
    // Stable: the checks of one key (one slot, one master) keep their order.
    std::stable_sort(routed.begin(), routed.end(),
                     [](const auto& a, const auto& b) { return std::less<>()(a.first, b.first); });
    for (std::size_t from = 0; from < routed.size();) {
      std::size_t to = from + 1;
      while (to < routed.size() && to - from < most && routed[to].first == routed[from].first) {
        ++to;
      }
      const Target target{routed[from].first, false};
      if (to - from == 1) {
        routed[from].second->aim(target);
        routed[from].second->send();
      } else {
        std::vector<ScriptCall*> members;
        members.reserve(to - from);
        for (std::size_t i = from; i < to; ++i) members.push_back(routed[i].second);
        auto* calls = new ScriptCalls(*this, std::move(members), /*node_wide=*/true);
        calls->aim(target);
        calls->send();
      }
      from = to;
    }
  }
}

RedisStore::RedisStore(RedisOptions options)
    : impl_(std::make_unique<redis::StoreImpl>(std::move(options))) {}

RedisStore::~RedisStore() = default;

std::string RedisStore::script_sha(Algorithm algorithm) {
  return sha1_hex(redis::script_text(algorithm, /*test_time=*/false));
}

std::string RedisStore::redis_key(Algorithm algorithm, std::string_view key) {
  std::string out;
  redis_key_into(out, algorithm, key);
  return out;
}

void RedisStore::redis_key_into(std::string& out, Algorithm algorithm, std::string_view key) {
  constexpr std::size_t kMaxVerbatim = 128;
  out.assign("fg:");
  out += short_name(algorithm);
  out += ":{";
  const bool verbatim = key.size() <= kMaxVerbatim && !key.empty() && key.front() != '#' &&
                        key.find_first_of("{}") == std::string_view::npos;
  if (verbatim) {
    out += key;
  } else {
    const core::KeyHash h = core::hash_key(algorithm, key);
    fmt::format_to(std::back_inserter(out), "#{:016x}{:016x}", h.high, h.low);
  }
  out += '}';
}

void RedisStore::check(std::span<const CheckOp> ops, std::span<Outcome> outcomes,
                       Completion& done) {
  if (ops.empty()) {
    done.complete();
    return;
  }
  Batch* batch = nullptr;
  if (ops.size() > 1) batch = new Batch{{ops.size()}, &done};
  const SteadyTime now = std::chrono::steady_clock::now();
  // On a thread with its own lane, checks wait for the end of the loop's turn and go out
  // together (one script call per algorithm); elsewhere each goes out alone.
  redis::Lane* lane = this_thread_lane.store == impl_.get() ? this_thread_lane.lane : nullptr;
  if (lane && !lane->connection->ready()) lane = nullptr;
  // Local, not thread_local: a check failed below completes at once, and its caller may call
  // check() again from inside that completion, on this thread.
  boost::container::small_vector<ScriptCall*, 8> shared;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto* call = new ScriptCall(*impl_, ops[i], outcomes[i], batch, done);
    // (A cluster has a breaker per master, asked when the check is routed.)
    if (!impl_->cluster && !impl_->breaker.allow(redis::StoreImpl::now_us(now))) {
      impl_->errors[kErrCircuitOpen].fetch_add(1, kRelaxed);
      call->fail(StoreStatus::kUnavailable);
      continue;
    }
    if (lane) {
      call->queue(now);
      lane->pending[static_cast<std::size_t>(call->algorithm())].push_back(call);
      if (!lane->seal_posted) {
        lane->seal_posted = true;
        asio::post(*lane->io, [impl = impl_.get(), lane] { impl->seal(*lane); });
      }
      continue;
    }
    call->queue(now);
    shared.push_back(call);
  }
  if (shared.empty()) return;
  // All of this batch in one turn of the store's loop: checks of one key are decided in order.
  bool post = false;
  {
    std::lock_guard lock(impl_->shared_mu);
    for (ScriptCall* call : shared) {
      impl_->shared_pending[static_cast<std::size_t>(call->algorithm())].push_back(call);
    }
    post = !std::exchange(impl_->shared_seal_posted, true);
  }
  if (post) asio::post(impl_->io, [impl = impl_.get()] { impl->seal_shared(); });
}

void RedisStore::command(std::vector<std::string> args, std::string routing_key,
                         std::chrono::milliseconds timeout, std::function<void(RedisValue)> done) {
  std::string encoded;
  std::vector<std::string_view> views(args.begin(), args.end());
  redis::append_command(encoded, views);
  const SteadyTime until = std::chrono::steady_clock::now() + timeout;
  // Routed on the store's loop, which owns the cluster's slot map.
  asio::post(impl_->io, [impl = impl_.get(), encoded = std::move(encoded),
                         key = std::move(routing_key), done = std::move(done), until]() mutable {
    auto* call = new CommandCall(*impl, std::move(encoded), std::move(done), until);
    if (impl->cluster) {
      redis::ClusterRouter::Node* node = impl->cluster->route(redis::key_slot(key));
      if (node == nullptr) impl->cluster->refresh_soon();
      call->aim(Target{node, false});
      if (node == nullptr) {
        call->on_failure(StoreStatus::kUnavailable);
        return;
      }
    }
    call->send();
  });
}

void RedisStore::subscribe(std::string channel, std::function<void(std::string_view)> on_message,
                           std::function<void()> on_subscribed) {
  if (impl_->options.tls) {
    impl_->log("info", "redis: no pub/sub over TLS; " + channel + " is followed by polling only");
    return;
  }
  asio::post(impl_->io, [impl = impl_.get(), channel = std::move(channel),
                         on_message = std::move(on_message),
                         on_subscribed = std::move(on_subscribed)]() mutable {
    if (impl->subscriber) return;
    auto where = [impl]() -> redis::Subscriber::Addresses {
      if (impl->cluster) return impl->options.cluster_seeds;
      return {impl->endpoint.get()};
    };
    impl->subscriber = std::make_unique<redis::Subscriber>(
        impl->io, impl->options, std::move(where), std::move(channel), std::move(on_message),
        std::move(on_subscribed),
        [impl](std::string_view level, std::string_view message) { impl->log(level, message); });
    impl->subscriber->start();
  });
}

void RedisStore::reset(std::string_view key, std::function<void(StoreStatus)> done) {
  // Every algorithm's key(s) of one user key share its hash tag: one DEL, one slot.
  std::vector<std::string> args = {"DEL"};
  for (int a = 0; a < kAlgorithmCount; ++a) {
    const auto algorithm = static_cast<Algorithm>(a);
    args.push_back(redis_key(algorithm, key));
    if (redis::key_count(algorithm) > 1) args.push_back(args.back() + ":m");
  }
  std::string routing = args[1];
  command(std::move(args), std::move(routing), std::max(impl_->options.timeout, kAdminTimeout),
          [done = std::move(done)](RedisValue v) {
            done(v.type == RedisValue::Type::kInteger  ? StoreStatus::kOk
                 : v.type == RedisValue::Type::kFailed ? v.failure
                                                       : StoreStatus::kUnavailable);
          });
}

StoreHealth RedisStore::health() const {
  StoreHealth h;
  for (const auto& e : impl_->errors) h.errors += e.load(kRelaxed);
  if (impl_->cluster) {
    auto c = impl_->cluster->health();
    h.ready = c.ready;
    h.state = std::move(c.state);
    h.error = std::move(c.error);
    return h;
  }
  std::string error;
  bool auth_failed = false;
  {
    std::lock_guard lock(impl_->state_mu);
    error = impl_->last_error;
    auth_failed = impl_->auth_failed;
  }
  bool any_ready = false;
  impl_->for_each_connection([&](const Connection& c) { any_ready = any_ready || c.ready(); });
  const auto circuit = impl_->breaker.state();
  if (!any_ready) {
    h.ready = false;
    h.state = auth_failed ? "auth_failed" : error.empty() ? "connecting" : "disconnected";
  } else if (circuit == CircuitBreaker::State::kOpen) {
    h.ready = false;
    h.state = "circuit_open";
  } else {
    h.ready = true;
    h.state = "connected";
  }
  h.error = std::move(error);
  return h;
}

void RedisStore::adopt(asio::io_context& io) {
  // In a cluster every check is routed by the store's own loop to its slot's master.
  if (impl_->cluster) return;
  auto lane = std::make_unique<redis::Lane>();
  lane->io = &io;
  lane->connection = std::make_unique<Connection>(
      io, impl_->options, impl_->endpoint, impl_->ssl, impl_->handshake,
      [impl = impl_.get()](bool ready, const std::string& error) { impl->on_state(ready, error); });
  lane->connection->start();
  this_thread_lane = ThreadLane{impl_.get(), lane.get()};
  std::lock_guard lock(impl_->lanes_mu);
  impl_->lanes.push_back(std::move(lane));
}

void RedisStore::release(asio::io_context& io) {
  auto& mine = this_thread_lane;
  std::lock_guard lock(impl_->lanes_mu);
  for (auto& lane : impl_->lanes) {
    if (lane->io != &io) continue;
    if (mine.lane == lane.get()) mine = ThreadLane{};
    lane->connection->stop();
  }
}

bool RedisStore::wait_connected(std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (impl_->cluster && impl_->cluster->health().ready) return true;
    for (const auto& c : impl_->connections) {
      if (c->ready()) return true;
    }
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

StoreHealth RedisStore::wait_started(std::chrono::milliseconds limit) const {
  const bool errors_are_final = impl_->options.sentinels.empty();
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    StoreHealth h = health();
    if (h.ready || (errors_are_final && !h.error.empty()) ||
        std::chrono::steady_clock::now() >= until) {
      return h;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void RedisStore::append_metrics(std::string& out) const {
  auto it = std::back_inserter(out);
  const redis::StoreImpl& s = *impl_;
  out +=
      "# HELP floodgate_store_latency_seconds Round trip of one decision to the shared store.\n"
      "# TYPE floodgate_store_latency_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < kLatencyBuckets.size(); ++b) {
    cumulative += s.latency[b].load(kRelaxed);
    fmt::format_to(it, "floodgate_store_latency_seconds_bucket{{store=\"redis\",le=\"{}\"}} {}\n",
                   kLatencyBuckets[b], cumulative);
  }
  cumulative += s.latency[kLatencyBuckets.size()].load(kRelaxed);
  fmt::format_to(it, "floodgate_store_latency_seconds_bucket{{store=\"redis\",le=\"+Inf\"}} {}\n",
                 cumulative);
  fmt::format_to(it, "floodgate_store_latency_seconds_sum{{store=\"redis\"}} {}\n",
                 static_cast<double>(s.latency_sum_us.load(kRelaxed)) / 1e6);
  fmt::format_to(it, "floodgate_store_latency_seconds_count{{store=\"redis\"}} {}\n", cumulative);

  out +=
      "# HELP floodgate_store_errors_total Decisions the shared store could not make, by kind.\n"
      "# TYPE floodgate_store_errors_total counter\n";
  for (std::size_t k = 0; k < kErrKinds; ++k) {
    fmt::format_to(it, "floodgate_store_errors_total{{store=\"redis\",kind=\"{}\"}} {}\n",
                   kErrorNames[k], s.errors[k].load(kRelaxed));
  }
  out +=
      "# HELP floodgate_store_script_reloads_total Scripts sent again after Redis answered "
      "NOSCRIPT.\n"
      "# TYPE floodgate_store_script_reloads_total counter\n";
  fmt::format_to(it, "floodgate_store_script_reloads_total{{store=\"redis\"}} {}\n",
                 s.noscript_reloads.load(kRelaxed));
  out +=
      "# HELP floodgate_store_circuit_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
      "# TYPE floodgate_store_circuit_state gauge\n";
  fmt::format_to(it, "floodgate_store_circuit_state{{store=\"redis\"}} {}\n",
                 static_cast<int>(s.cluster ? s.cluster->circuit_state() : s.breaker.state()));
  out +=
      "# HELP floodgate_store_circuit_opened_total Times the circuit breaker opened.\n"
      "# TYPE floodgate_store_circuit_opened_total counter\n";
  fmt::format_to(it, "floodgate_store_circuit_opened_total{{store=\"redis\"}} {}\n",
                 s.cluster ? s.cluster->circuits_opened() : s.breaker.times_opened());
  int ready = 0;
  int total = 0;
  s.for_each_connection([&](const Connection& c) {
    ready += c.ready() ? 1 : 0;
    ++total;
  });
  out +=
      "# HELP floodgate_store_connections Connections to the shared store, by state.\n"
      "# TYPE floodgate_store_connections gauge\n";
  fmt::format_to(it, "floodgate_store_connections{{store=\"redis\",state=\"ready\"}} {}\n", ready);
  fmt::format_to(it, "floodgate_store_connections{{store=\"redis\",state=\"down\"}} {}\n",
                 total - ready);
  if (!s.cluster) return;
  out +=
      "# HELP floodgate_store_cluster_redirects_total Redis Cluster answers that sent a call "
      "again (moved, ask, tryagain), failed it (clusterdown), or checks of a call to a master sent "
      "again alone as its key was not there (not_local).\n"
      "# TYPE floodgate_store_cluster_redirects_total counter\n";
  for (std::size_t k = 0; k < kRedirectKinds; ++k) {
    fmt::format_to(it,
                   "floodgate_store_cluster_redirects_total{{store=\"redis\",kind=\"{}\"}} {}\n",
                   kRedirectNames[k], s.redirects[k].load(kRelaxed));
  }
  const auto h = s.cluster->health();
  out +=
      "# HELP floodgate_store_cluster_slots_covered Hash slots (of 16384) with a known master.\n"
      "# TYPE floodgate_store_cluster_slots_covered gauge\n";
  fmt::format_to(it, "floodgate_store_cluster_slots_covered{{store=\"redis\"}} {}\n",
                 h.slots_covered);
  out +=
      "# HELP floodgate_store_cluster_slot_map_loads_total Slot maps read from the cluster "
      "(CLUSTER SLOTS), periodic or asked for by a redirect, a failure or a new node.\n"
      "# TYPE floodgate_store_cluster_slot_map_loads_total counter\n";
  fmt::format_to(it, "floodgate_store_cluster_slot_map_loads_total{{store=\"redis\"}} {}\n",
                 s.cluster->map_loads());
  out +=
      "# HELP floodgate_store_cluster_master_slots Hash slots each master serves, as last mapped.\n"
      "# TYPE floodgate_store_cluster_master_slots gauge\n";
  std::string ready_lines;
  std::string circuit_lines;
  s.cluster->for_each_master([&](const std::string& node, int slots, int ready_connections,
                                 CircuitBreaker::State state) {
    // Node names are host:port, as Redis gives them: nothing to escape.
    const std::string& label = node;
    fmt::format_to(it, "floodgate_store_cluster_master_slots{{store=\"redis\",node=\"{}\"}} {}\n",
                   label, slots);
    fmt::format_to(
        std::back_inserter(ready_lines),
        "floodgate_store_cluster_master_connections_ready{{store=\"redis\",node=\"{}\"}} "
        "{}\n",
        label, ready_connections);
    fmt::format_to(
        std::back_inserter(circuit_lines),
        "floodgate_store_cluster_master_circuit_state{{store=\"redis\",node=\"{}\"}} {}\n", label,
        static_cast<int>(state));
  });
  out +=
      "# HELP floodgate_store_cluster_master_connections_ready Ready connections to each master.\n"
      "# TYPE floodgate_store_cluster_master_connections_ready gauge\n";
  out += ready_lines;
  out +=
      "# HELP floodgate_store_cluster_master_circuit_state Each master's circuit breaker: 0 "
      "closed, 1 open, 2 half-open.\n"
      "# TYPE floodgate_store_cluster_master_circuit_state gauge\n";
  out += circuit_lines;
}

}  // namespace floodgate
