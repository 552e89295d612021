// File: store/redis/connection.h
//
// Connection: one multiplexed, pipelined connection to a Redis server, living on one io_context
// thread. Any thread may submit() a command; every command submitted while a write is on its way
// goes out in the next write, and replies are matched to calls in order (RESP answers in order).
//
// The connection keeps itself up: it connects (TCP with optional TLS, or a Unix socket; AUTH,
// SELECT, and the handshake commands it was given — SCRIPT LOAD of every script), serves until
// an error, fails what was in flight, waits a backoff (exponential with jitter) and starts again,
// until stop().
//
// Deadlines: each call carries one; a timer fails calls whose deadline passed (kTimeout) without
// waiting for Redis. Their replies, when they come, are read and dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/redis_store.h"
#include "floodgate/store.h"
#include "store/redis/plain_session.h"
#include "store/redis/resp.h"

namespace floodgate::redis {

using SteadyTime = std::chrono::steady_clock::time_point;

// Call: a command waiting for its reply. Exactly one of on_reply() / on_failure() runs, on the
// connection's thread, once submit() has accepted it.
class Call {
 public:
  SteadyTime deadline;

  virtual void on_reply(Reply reply) = 0;
  virtual void on_failure(StoreStatus status) = 0;

 protected:
  ~Call() = default;
};

// Endpoint: where connections connect: fixed (the options' host and port, or their unix_socket
// as host with port 0: see connect_socket()), or moved by the Sentinel watcher when the master
// changes. Thread-safe.
class Endpoint {
 public:
  Endpoint(std::string host, std::uint16_t port) : host_(std::move(host)), port_(port) {}
  std::pair<std::string, std::uint16_t> get() const {
    std::lock_guard lock(mu_);
    return {host_, port_};
  }
  // set(): true when the address changed.
  bool set(const std::string& host, std::uint16_t port) {
    std::lock_guard lock(mu_);
    if (host == host_ && port == port_) return false;
    host_ = host;
    port_ = port;
    return true;
  }

 private:
  mutable std::mutex mu_;
  std::string host_;  // guarded by mu_; empty: not known yet
  std::uint16_t port_ = 0;
};

// What a connection says while its Endpoint has no address yet (Sentinel has not answered).
inline constexpr std::string_view kMasterNotKnown =
    "the master's address is not known yet: no sentinel has answered";

class Connection {
 public:
  // on_state(ready, error): the connection became ready (error empty), or could not connect or
  // lost its connection (error says why). Runs on the io thread.
  using StateListener = std::function<void(bool ready, const std::string& error)>;

  // `handshake`: RESP-encoded commands sent after AUTH/SELECT whose replies must not be errors.
  // `ssl`: the TLS context (used only when options.tls). Everything is borrowed for the
  // connection's life.
  Connection(boost::asio::io_context& io, const RedisOptions& options, const Endpoint& endpoint,
             boost::asio::ssl::context& ssl, const std::vector<std::string>& handshake,
             StateListener on_state);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // start(): begins connecting. Call once, from any thread.
  void start();
  // stop(): closes the connection and ends the reconnect loop; calls in flight fail. Call on the
  // io thread (post it).
  void stop();

  // submit(): queues `command` (RESP-encoded) for `call`. False when the connection is not ready
  // or has max_in_flight calls waiting: the call was not taken and nothing will be called on it.
  // Thread-safe.
  bool submit(std::string_view command, Call* call);
  // submit() of two commands that must go out back to back on this connection (ASKING and the
  // command it applies to); both are taken or neither.
  bool submit(std::string_view first, Call* first_call, std::string_view second, Call* second_call);

  // drop(): closes the connection (calls in flight fail) and connects again at once, to the
  // endpoint's current address: the master moved. Thread-safe.
  void drop();

  bool ready() const { return ready_.load(std::memory_order_acquire); }
  std::size_t in_flight() const;

 private:
  using Stream = boost::asio::ssl::stream<Socket>;  // TCP or a Unix socket; TLS on TCP only

  boost::asio::awaitable<void> run();
  boost::asio::awaitable<std::string> establish();
  boost::asio::awaitable<std::string> read_loop();
  void dispatch(Reply reply);
  void flush();
  void arm_deadlines();
  void expire_due();
  void fail_all(StoreStatus status);
  void close_stream();

  boost::asio::io_context& io_;
  const RedisOptions& options_;
  const Endpoint& endpoint_;
  boost::asio::ssl::context& ssl_;
  const bool tls_;
  const std::vector<std::string>& handshake_;
  StateListener on_state_;

  // io thread only
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<RespReader> reader_;
  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer backoff_timer_;
  bool timer_armed_ = false;
  bool stopping_ = false;
  bool skip_backoff_ = false;  // drop(): reconnect without waiting
  int generation_ = 0;         // one per connection attempt; stale completions check it
  std::string writing_;        // the bytes of the write in progress
  std::vector<char> read_buffer_;

  std::atomic<bool> ready_{false};
  mutable std::mutex mu_;
  std::string out_;               // guarded by mu_: submitted, not yet written
  std::deque<Call*> in_flight_;   // guarded by mu_: in reply order; null once timed out
  std::size_t scanned_ = 0;       // guarded by mu_: leading in_flight_ entries already expired
  bool flush_scheduled_ = false;  // guarded by mu_
};

}  // namespace floodgate::redis
