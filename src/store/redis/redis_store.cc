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

#include "core/key_hash.h"
#include "store/redis/circuit_breaker.h"
#include "store/redis/connection.h"
#include "store/redis/resp.h"
#include "store/redis/scripts.h"

namespace floodgate {
namespace {

namespace asio = boost::asio;
using redis::Call;
using redis::CircuitBreaker;
using redis::Connection;
using redis::Reply;
using redis::SteadyTime;

constexpr auto kRelaxed = std::memory_order_relaxed;

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

struct Batch {
  std::atomic<std::size_t> remaining;
  Completion* done;
};

// The connection the calling thread adopted (RedisStore::adopt), and the store it belongs to.
struct ThreadLane {
  const void* store = nullptr;
  Connection* connection = nullptr;
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
  std::vector<std::unique_ptr<Connection>> connections;  // the pool, on `io`

  // Lanes: connections adopted by other threads' event loops (RedisStore::adopt).
  struct Lane {
    asio::io_context* io = nullptr;
    std::unique_ptr<Connection> connection;
  };
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
    const int pool = std::max(1, options.pool_size);
    for (int i = 0; i < pool; ++i) {
      connections.push_back(std::make_unique<Connection>(
          io, options, ssl, handshake,
          [this](bool ready, const std::string& error) { on_state(ready, error); }));
    }
    for (auto& c : connections) c->start();
    thread = std::thread([this] { io.run(); });
  }

  ~StoreImpl() {
    asio::post(io, [this] {
      for (auto& c : connections) c->stop();
      work.reset();
    });
    thread.join();
  }

  void log(std::string_view level, std::string_view message) const {
    if (options.log) options.log(level, message);
  }

  void on_state(bool ready, const std::string& error) {
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
        was_failing = !last_error.empty();
        last_error.clear();
        auth_failed = false;
      }
      if (first || was_failing) {
        log("info", fmt::format("redis: connected to {}:{}{}", options.host, options.port,
                                was_failing ? " (recovered)" : ""));
      }
      return;
    }
    // A connection that had been ready and went down, or an attempt that failed.
    bool changed = false;
    {
      std::lock_guard lock(state_mu);
      changed = error != last_error;
      last_error = error;
      auth_failed = error.rfind("AUTH", 0) == 0 || error.find("NOAUTH") != std::string::npos ||
                    error.find("WRONGPASS") != std::string::npos;
    }
    if (changed) log("warn", fmt::format("redis: {}", error));
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

  // Builds the EVALSHA (or, after NOSCRIPT, EVAL) of `op` onto `out`.
  void format(std::string& out, const CheckOp& op, bool full_script) const {
    const Policy& policy = *op.policy;
    const Script& script = scripts[static_cast<std::size_t>(policy.algorithm())];
    const std::string key = RedisStore::redis_key(policy.algorithm(), op.key);
    const std::string meta = script.keys > 1 ? key + ":m" : std::string();

    char numbers[6][24];
    std::string_view n[6];
    auto put = [&](int i, std::int64_t v) {
      auto [end, ec] = std::to_chars(numbers[i], numbers[i] + sizeof numbers[i], v);
      n[i] = std::string_view(numbers[i], static_cast<std::size_t>(end - numbers[i]));
    };
    put(0, script.keys);
    if (options.test_clock) {
      put(1, options.test_clock->now().count());
    } else {
      n[1] = {};
    }
    put(2, static_cast<std::int64_t>(op.cost));
    put(3, static_cast<std::int64_t>(policy.limit()));
    switch (policy.algorithm()) {
      case Algorithm::kTokenBucket:
      case Algorithm::kGcra:
      case Algorithm::kLeakyBucket:
        put(4, policy.interval());
        put(5, policy.ticks_per_us());
        break;
      case Algorithm::kFixedWindow:
      case Algorithm::kSlidingWindowLog:
        put(4, policy.window().count());
        put(5, 0);
        break;
      case Algorithm::kSlidingWindowCounter:
        put(4, policy.window().count());
        put(5, policy.weight_shift());
        break;
    }
    std::array<std::string_view, 10> args;
    std::size_t argc = 0;
    args[argc++] = full_script ? "EVAL" : "EVALSHA";
    args[argc++] = full_script ? std::string_view(script.text) : std::string_view(script.sha);
    args[argc++] = n[0];
    args[argc++] = key;
    if (script.keys > 1) args[argc++] = meta;
    for (int i = 1; i < 6; ++i) args[argc++] = n[i];
    redis::append_command(out, std::span(args.data(), argc));
  }

  // for_each_connection(): the pool's and the lanes'.
  template <class Fn>
  void for_each_connection(Fn fn) const {
    for (const auto& c : connections) fn(*c);
    std::lock_guard lock(lanes_mu);
    for (const auto& lane : lanes) fn(*lane->connection);
  }

  // submit(): hands `call` to this thread's lane when it has one, else to a ready connection of
  // the pool (round robin); false when none takes it.
  Connection* submit(std::string_view command, Call* call) {
    if (this_thread_lane.store == this) {
      Connection* lane = this_thread_lane.connection;
      if (lane->ready() && lane->submit(command, call)) return lane;
    }
    const std::size_t count = connections.size();
    const std::size_t first = next.fetch_add(1, kRelaxed);
    bool overloaded = false;
    for (std::size_t k = 0; k < count; ++k) {
      Connection& c = *connections[(first + k) % count];
      if (!c.ready()) continue;
      if (c.submit(command, call)) return &c;
      overloaded = true;
    }
    errors[overloaded ? kErrOverloaded : kErrNotConnected].fetch_add(1, kRelaxed);
    return nullptr;
  }
};

namespace {

// ScriptCall: one check on its way to Redis and back.
class ScriptCall final : public Call {
 public:
  ScriptCall(redis::StoreImpl& store, const CheckOp& op, Outcome& out, Batch* batch,
             Completion& done)
      : store_(store), op_(op), out_(out), batch_(batch), done_(done) {}

  // send(): false when no connection took it (the caller finishes it).
  bool send(SteadyTime now) {
    sent_ = now;
    deadline = now + store_.options.timeout;
    thread_local std::string command;
    command.clear();
    store_.format(command, op_, /*full_script=*/false);
    return store_.submit(command, this) != nullptr;
  }

  void on_reply(Reply reply) override {
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view error = redis::text(*reply);
      if (error.rfind("NOSCRIPT", 0) == 0 && !resent_) {
        // The script cache was flushed (SCRIPT FLUSH, a restart): EVAL loads it again.
        resent_ = true;
        store_.noscript_reloads.fetch_add(1, kRelaxed);
        std::string command;
        store_.format(command, op_, /*full_script=*/true);
        if (store_.submit(command, this)) return;
        fail(StoreStatus::kUnavailable);
        return;
      }
      store_.errors[error.rfind("OOM", 0) == 0 ? kErrOom : kErrScript].fetch_add(1, kRelaxed);
      store_.log("warn", fmt::format("redis: script error: {}", error));
      fail(StoreStatus::kUnavailable);
      return;
    }
    store_.record_latency(sent_);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 6) {
      store_.errors[kErrScript].fetch_add(1, kRelaxed);
      fail(StoreStatus::kUnavailable);
      return;
    }
    std::int64_t v[6];
    for (std::size_t i = 0; i < 6; ++i) {
      const redisReply* e = reply->element[i];
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
    store_.breaker.record_success();
    finish();
  }

  void on_failure(StoreStatus status) override {
    if (status == StoreStatus::kTimeout) store_.errors[kErrTimeout].fetch_add(1, kRelaxed);
    fail(status);
  }

  // reject(): fails a call that never went out (the breaker is open); the breaker is not told.
  void reject(StoreStatus status) {
    out_.status = status;
    finish();
  }

  void fail(StoreStatus status) {
    out_.status = status;
    store_.breaker.record_failure(redis::StoreImpl::now_us(std::chrono::steady_clock::now()));
    finish();
  }

 private:
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

  redis::StoreImpl& store_;
  const CheckOp& op_;
  Outcome& out_;
  Batch* batch_;
  Completion& done_;
  SteadyTime sent_;
  bool resent_ = false;
};

}  // namespace

RedisStore::RedisStore(RedisOptions options)
    : impl_(std::make_unique<redis::StoreImpl>(std::move(options))) {}

RedisStore::~RedisStore() = default;

std::string RedisStore::script_sha(Algorithm algorithm) {
  return sha1_hex(redis::script_text(algorithm, /*test_time=*/false));
}

std::string RedisStore::redis_key(Algorithm algorithm, std::string_view key) {
  constexpr std::size_t kMaxVerbatim = 128;
  std::string out = "fg:";
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
  return out;
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
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto* call = new ScriptCall(*impl_, ops[i], outcomes[i], batch, done);
    if (!impl_->breaker.allow(redis::StoreImpl::now_us(now))) {
      impl_->errors[kErrCircuitOpen].fetch_add(1, kRelaxed);
      call->reject(StoreStatus::kUnavailable);
      continue;
    }
    if (!call->send(now)) call->fail(StoreStatus::kUnavailable);
  }
}

StoreHealth RedisStore::health() const {
  StoreHealth h;
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
  auto lane = std::make_unique<redis::StoreImpl::Lane>();
  lane->io = &io;
  lane->connection = std::make_unique<Connection>(
      io, impl_->options, impl_->ssl, impl_->handshake,
      [impl = impl_.get()](bool ready, const std::string& error) { impl->on_state(ready, error); });
  lane->connection->start();
  this_thread_lane = ThreadLane{impl_.get(), lane->connection.get()};
  std::lock_guard lock(impl_->lanes_mu);
  impl_->lanes.push_back(std::move(lane));
}

void RedisStore::release(asio::io_context& io) {
  auto& mine = this_thread_lane;
  std::lock_guard lock(impl_->lanes_mu);
  for (auto& lane : impl_->lanes) {
    if (lane->io != &io) continue;
    if (mine.connection == lane->connection.get()) mine = ThreadLane{};
    lane->connection->stop();
  }
}

bool RedisStore::wait_connected(std::chrono::milliseconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    for (const auto& c : impl_->connections) {
      if (c->ready()) return true;
    }
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
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
                 static_cast<int>(s.breaker.state()));
  out +=
      "# HELP floodgate_store_circuit_opened_total Times the circuit breaker opened.\n"
      "# TYPE floodgate_store_circuit_opened_total counter\n";
  fmt::format_to(it, "floodgate_store_circuit_opened_total{{store=\"redis\"}} {}\n",
                 s.breaker.times_opened());
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
}

}  // namespace floodgate
