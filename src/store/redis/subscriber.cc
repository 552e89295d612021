#include "store/redis/subscriber.h"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "store/redis/plain_session.h"

namespace floodgate::redis {

namespace asio = boost::asio;

namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
constexpr auto kPingEvery = std::chrono::milliseconds(1000);
constexpr auto kSilenceLimit = std::chrono::seconds(3);
}  // namespace

Subscriber::Subscriber(asio::io_context& io, const RedisOptions& options,
                       std::function<Addresses()> where, std::string channel,
                       std::function<void(std::string_view)> on_message,
                       std::function<void()> on_subscribed, Log log)
    : io_(io),
      options_(options),
      where_(std::move(where)),
      channel_(std::move(channel)),
      on_message_(std::move(on_message)),
      on_subscribed_(std::move(on_subscribed)),
      log_(std::move(log)),
      backoff_timer_(io) {}

Subscriber::~Subscriber() = default;

void Subscriber::start() { asio::co_spawn(io_, run(), asio::detached); }

void Subscriber::stop() {
  *stopped_ = true;
  backoff_timer_.cancel();
  if (current_) current_->close();
}

asio::awaitable<std::string> Subscriber::session(const std::string& host, std::uint16_t port) {
  auto s = std::make_shared<PlainSession>(io_);
  current_ = s;
  std::string error =
      co_await s->open(host, port, options_.username, options_.password, options_.connect_timeout);
  if (!error.empty()) co_return error;
  std::string subscribe = command({"SUBSCRIBE", channel_});
  if (!co_await s->write(std::move(subscribe))) co_return std::string("cannot send");
  Reply confirmed = co_await s->read();
  if (!confirmed) co_return std::string("no answer to SUBSCRIBE");
  if (confirmed->type == REDIS_REPLY_ERROR) co_return "SUBSCRIBE: " + std::string(text(*confirmed));
  s->arm(kSilenceLimit);
  PlainSession::keep_alive(s, kPingEvery);
  if (!last_error_.empty() && log_) {
    log_("info", "redis: subscribed to " + channel_ + " on " + host + ":" + std::to_string(port));
  }
  last_error_.clear();
  if (on_subscribed_) on_subscribed_();
  for (;;) {
    Reply r = co_await s->read();
    if (!r) break;
    s->arm(kSilenceLimit);
    // ["message", channel, payload]; PINGs answer ["pong", ""].
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && text(*r->element[0]) == "message") {
      on_message_(text(*r->element[2]));
    }
  }
  s->close();
  co_return std::string("connection lost");
}

asio::awaitable<void> Subscriber::run() {
  const auto stopped = stopped_;
  int round = 0;
  while (!*stopped) {
    const Addresses servers = where_();
    bool reached = false;
    for (const auto& [host, port] : servers) {
      if (*stopped || host.empty()) continue;
      const auto began = std::chrono::steady_clock::now();
      const std::string error = co_await session(host, port);
      if (*stopped) co_return;
      // A session that lasted was a working subscription: start the next round afresh.
      reached = reached || std::chrono::steady_clock::now() - began > kSilenceLimit;
      // One line per new error, not one per attempt while Redis stays down.
      std::string line = "redis: subscription to " + channel_ + " on " + host + ":" +
                         std::to_string(port) + ": " + error;
      if (log_ && line != last_error_) log_("warn", line);
      last_error_ = std::move(line);
    }
    if (reached) round = 0;
    backoff_timer_.expires_after(round_backoff(round++));
    co_await backoff_timer_.async_wait(kAwait);
  }
}

}  // namespace floodgate::redis
