// File: store/redis/sentinel.h
//
// SentinelWatcher: keeps an Endpoint on the current master of a Redis Sentinel setup. It asks the
// sentinels in turn (SENTINEL get-master-addr-by-name), then stays subscribed to +switch-master on
// the one that answered, so a failover moves the endpoint within the sentinels' own announcement;
// when that sentinel goes away (or stops answering PINGs) it moves on to the next. reask() makes it
// ask again at once — the store calls it when its connections to the master fail or the server
// says READONLY (a demoted master), in case an announcement was missed.
//
// Plain TCP to the sentinels (as redis-server --sentinel serves), AUTH with sentinel_password.
// Lives on the store's io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/redis_store.h"
#include "store/redis/connection.h"

namespace floodgate::redis {

class SentinelWatcher {
 public:
  // on_moved(host, port): the endpoint now points elsewhere; runs on the io thread.
  using MovedListener = std::function<void(const std::string& host, std::uint16_t port)>;
  using Log = std::function<void(std::string_view level, std::string_view message)>;

  SentinelWatcher(boost::asio::io_context& io, const RedisOptions& options, Endpoint& endpoint,
                  MovedListener on_moved, Log log);
  ~SentinelWatcher();
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  void start();
  // stop(): ends the watch; call on the io thread.
  void stop();
  // reask(): ask a sentinel for the master now (at most one query at a time, and not more often
  // than every 100 ms). Thread-safe.
  void reask();

  // The last error talking to the sentinels ("" when the last exchange went well). io thread.
  const std::string& last_error() const { return last_error_; }

 private:
  struct Session;
  boost::asio::awaitable<void> watch();
  boost::asio::awaitable<void> query_once();
  boost::asio::awaitable<std::string> subscribe_session(const std::string& host,
                                                        std::uint16_t port);
  void apply(const std::string& host, std::uint16_t port, std::string_view why);

  boost::asio::io_context& io_;
  const RedisOptions& options_;
  Endpoint& endpoint_;
  MovedListener on_moved_;
  Log log_;
  boost::asio::steady_timer backoff_timer_;
  std::shared_ptr<bool> stopped_ = std::make_shared<bool>(false);
  Session* session_ = nullptr;  // the subscribed session, to close on stop()
  bool querying_ = false;
  bool reached_ = false;  // the last session got the master's address
  std::chrono::steady_clock::time_point last_query_{};
  std::string last_error_;
};

}  // namespace floodgate::redis
