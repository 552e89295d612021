// File: store/redis/subscriber.h
//
// Subscriber: stays subscribed to one pub/sub channel (RedisStore::subscribe). It asks `where` for
// the servers to try (the master's current address; in a cluster, the seed nodes: a cluster
// forwards every PUBLISH to all its nodes), subscribes on the first that answers, PINGs every
// second and gives up on a server silent for three, then moves on, with backoff (100 ms doubling
// to 2 s, jittered) after a round in which every server failed. on_subscribed() runs after every
// successful SUBSCRIBE, so the caller can catch up on what it missed while disconnected.
//
// Plain TCP with AUTH (the store's credentials). Lives on the store's io thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/redis_store.h"

namespace floodgate::redis {

struct PlainSession;

class Subscriber {
 public:
  using Addresses = std::vector<std::pair<std::string, std::uint16_t>>;
  using Log = std::function<void(std::string_view level, std::string_view message)>;

  Subscriber(boost::asio::io_context& io, const RedisOptions& options,
             std::function<Addresses()> where, std::string channel,
             std::function<void(std::string_view)> on_message, std::function<void()> on_subscribed,
             Log log);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  void start();
  // stop(): ends the subscription; call on the io thread.
  void stop();

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::string> session(const std::string& host, std::uint16_t port);

  boost::asio::io_context& io_;
  const RedisOptions& options_;
  std::function<Addresses()> where_;
  std::string channel_;
  std::function<void(std::string_view)> on_message_;
  std::function<void()> on_subscribed_;
  Log log_;
  boost::asio::steady_timer backoff_timer_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  std::shared_ptr<PlainSession> current_;
  std::string last_error_;  // the last line logged, so an outage is logged once
};

}  // namespace floodgate::redis
