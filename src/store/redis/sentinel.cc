#include "store/redis/sentinel.h"

#include <sstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "store/redis/plain_session.h"
#include "store/redis/resp.h"

namespace floodgate::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr auto kPingEvery = std::chrono::seconds(1);
constexpr auto kSilenceLimit = std::chrono::seconds(3);  // no reply for this long: dead sentinel
constexpr auto kReaskEvery = std::chrono::milliseconds(100);

}  // namespace

// Session: one connection to one sentinel.
struct SentinelWatcher::Session : PlainSession {
  explicit Session(asio::io_context& io) : PlainSession(io) {}

  asio::awaitable<std::string> open(const std::string& host, std::uint16_t port,
                                    const RedisOptions& options) {
    return PlainSession::open(host, port, "", options.sentinel_password, options.connect_timeout);
  }
  // master(): asks where `name` is; "" and the address, or what went wrong.
  asio::awaitable<std::string> master(const std::string& name, std::string& host,
                                      std::uint16_t& port) {
    std::string ask = command({"SENTINEL", "get-master-addr-by-name", name});
    if (!co_await write(std::move(ask))) {
      co_return std::string("cannot send SENTINEL get-master-addr-by-name");
    }
    Reply r = co_await read();
    if (!r) co_return std::string("no answer to SENTINEL get-master-addr-by-name");
    if (r->type == REDIS_REPLY_ERROR) co_return std::string(text(*r));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      co_return "does not know a master named '" + name + "'";
    }
    host = std::string(text(*r->element[0]));
    const std::string digits(text(*r->element[1]));
    const int value = std::atoi(digits.c_str());
    if (host.empty() || value <= 0 || value > 65535)
      co_return std::string("answered a malformed address");
    port = static_cast<std::uint16_t>(value);
    co_return std::string("");
  }
};

SentinelWatcher::SentinelWatcher(asio::io_context& io, const RedisOptions& options,
                                 Endpoint& endpoint, MovedListener on_moved, Log log)
    : io_(io),
      options_(options),
      endpoint_(endpoint),
      on_moved_(std::move(on_moved)),
      log_(std::move(log)),
      backoff_timer_(io) {}

SentinelWatcher::~SentinelWatcher() = default;

void SentinelWatcher::start() { asio::co_spawn(io_, watch(), asio::detached); }

void SentinelWatcher::stop() {
  *stopped_ = true;
  backoff_timer_.cancel();
  if (session_) session_->close();
}

void SentinelWatcher::reask() {
  asio::post(io_, [this, stopped = stopped_] {
    if (*stopped || querying_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_query_ < kReaskEvery) return;
    last_query_ = now;
    querying_ = true;
    asio::co_spawn(io_, query_once(), asio::detached);
  });
}

void SentinelWatcher::apply(const std::string& host, std::uint16_t port, std::string_view why) {
  if (!endpoint_.set(host, port)) return;
  if (log_) {
    log_("info", "sentinel: master '" + options_.sentinel_master + "' is at " + host + ":" +
                     std::to_string(port) + " (" + std::string(why) + ")");
  }
  on_moved_(host, port);
}

asio::awaitable<void> SentinelWatcher::query_once() {
  const auto stopped = stopped_;
  for (const auto& [host, port] : options_.sentinels) {
    if (*stopped) break;
    Session s(io_);
    std::string error = co_await s.open(host, port, options_);
    std::string master_host;
    std::uint16_t master_port = 0;
    if (error.empty())
      error = co_await s.master(options_.sentinel_master, master_host, master_port);
    s.close();
    if (*stopped) break;
    if (error.empty()) {
      apply(master_host, master_port, "asked sentinel " + host + ":" + std::to_string(port));
      break;
    }
  }
  if (!*stopped) querying_ = false;
}

asio::awaitable<std::string> SentinelWatcher::subscribe_session(const std::string& host,
                                                                std::uint16_t port) {
  auto s = std::make_shared<Session>(io_);
  session_ = s.get();
  struct Forget {
    SentinelWatcher* self;
    ~Forget() { self->session_ = nullptr; }
  } forget{this};
  std::string error = co_await s->open(host, port, options_);
  if (!error.empty()) co_return error;
  std::string master_host;
  std::uint16_t master_port = 0;
  error = co_await s->master(options_.sentinel_master, master_host, master_port);
  if (!error.empty()) co_return error;
  apply(master_host, master_port, "asked sentinel " + host + ":" + std::to_string(port));
  last_error_.clear();
  reached_ = true;

  std::string subscribe = command({"SUBSCRIBE", "+switch-master"});
  if (!co_await s->write(std::move(subscribe))) co_return std::string("cannot subscribe");
  s->arm(kSilenceLimit);
  // A PING a second keeps the silence guard from firing on a quiet but healthy sentinel.
  PlainSession::keep_alive(s, kPingEvery);
  for (;;) {
    Reply r = co_await s->read();
    if (!r) break;
    s->arm(kSilenceLimit);
    // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || text(*r->element[0]) != "message") {
      continue;
    }
    std::istringstream words{std::string(text(*r->element[2]))};
    std::string name, old_host, old_port, new_host;
    int new_port = 0;
    if (!(words >> name >> old_host >> old_port >> new_host >> new_port)) continue;
    if (name != options_.sentinel_master || new_port <= 0 || new_port > 65535) continue;
    apply(new_host, static_cast<std::uint16_t>(new_port),
          "+switch-master from sentinel " + host + ":" + std::to_string(port));
  }
  s->close();
  co_return std::string("connection lost");
}

asio::awaitable<void> SentinelWatcher::watch() {
  const auto stopped = stopped_;
  std::size_t next = 0;
  int round = 0;
  while (!*stopped) {
    const auto& [host, port] = options_.sentinels[next % options_.sentinels.size()];
    const std::string error = co_await subscribe_session(host, port);
    if (*stopped) break;
    if (std::exchange(reached_, false)) round = 0;
    last_error_ = "sentinel " + host + ":" + std::to_string(port) + ": " + error;
    if (log_) log_("warn", last_error_);
    if (++next % options_.sentinels.size() != 0) continue;  // the next sentinel, at once
    // Every sentinel failed: wait (100 ms doubling to 2 s, with jitter) before the next round.
    backoff_timer_.expires_after(round_backoff(round++));
    co_await backoff_timer_.async_wait(kAwait);
  }
}

}  // namespace floodgate::redis
