// File: store/redis/plain_session.h
//
// PlainSession: one short-lived plain (no TLS) conversation with a Redis server or sentinel,
// written as coroutines on an io_context: connect, AUTH, then commands and replies one at a time,
// or a subscription. A guard timer closes the socket when a step (or, once subscribed, the silence)
// lasts too long. Used where the pipelined Connection does not fit: asking sentinels, and pub/sub
// (a subscribed connection receives pushes, not replies in order).
//
// Not thread-safe: one io thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "store/redis/resp.h"

namespace floodgate::redis {

// Socket: a stream socket to a Redis server, over TCP or a Unix socket.
using Socket = boost::asio::generic::stream_protocol::socket;

// connect_socket(): connects `socket` to the Unix socket at `host` when `port` is 0 (an address
// from unix:// URLs), else to host:port over TCP (each address the name resolves to, in turn,
// with TCP_NODELAY); "" or what went wrong, naming the address. The caller's connect timeout
// closes the socket and sets `given_up`, which stops further attempts.
boost::asio::awaitable<std::string> connect_socket(Socket& socket, const std::string& host,
                                                   std::uint16_t port, const bool& given_up);

// command(): a command encoded in RESP.
std::string command(std::initializer_list<std::string_view> args);

// round_backoff(): how long to wait after the `round`th round (from 0) in which every server
// failed: 100 ms doubling to 2 s, jittered down to half of that.
std::chrono::milliseconds round_backoff(int round);

struct PlainSession {
  explicit PlainSession(boost::asio::io_context& io) : socket(io), guard(io), ping(io) {}

  Socket socket;
  RespReader reader;
  std::vector<char> buffer = std::vector<char>(16 * 1024);
  boost::asio::steady_timer guard;
  boost::asio::steady_timer ping;
  bool closed = false;

  void close();
  // arm(): closes the session unless arm() is called again within `limit`.
  void arm(std::chrono::steady_clock::duration limit);
  boost::asio::awaitable<bool> write(std::string bytes);
  // read(): the next reply; null when the connection failed.
  boost::asio::awaitable<Reply> read();
  // open(): connects (connect_socket(): port 0 is a Unix socket) and, when `password` is set,
  // authenticates (as `username` when set); "" or what went wrong.
  boost::asio::awaitable<std::string> open(const std::string& host, std::uint16_t port,
                                           const std::string& username, const std::string& password,
                                           std::chrono::milliseconds timeout);
  // keep_alive(): sends a PING every `every` until the session closes (a subscribed session's
  // silence guard then only fires on a dead server). `self` keeps the session alive meanwhile.
  static void keep_alive(std::shared_ptr<PlainSession> self, std::chrono::milliseconds every);
};

}  // namespace floodgate::redis
