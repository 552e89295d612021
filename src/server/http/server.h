// File: server/http/server.h
//
// HttpServer: HTTP/1.1 with keep-alive on Boost.Beast. One io_context and one acceptor per thread,
// all listening on the same port with SO_REUSEPORT, so the kernel spreads connections and no two
// threads share a queue (thread-per-core; measured faster than one shared io_context on 2 cores).
// Every request goes to the Handler (the Api, or the admin API on its own port); the server only
// parses, applies limits and writes.
//
// Limits: 8 KiB and 100 fields of headers (431), 64 KiB of body (413), a request must arrive whole
// within `request_timeout` and an idle keep-alive connection is closed after `idle_timeout`.
//
// stop() is graceful: acceptors close at once, each connection finishes the request it is
// serving and closes, and run() returns when all are done (or `drain_timeout` has passed).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "server/http/api.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace floodgate::http {

struct ServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8080;  // 0: any free port (see bound_port())
  int threads = 1;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_header_fields = 100;
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds drain_timeout{10'000};
  // Called on each worker's thread as its event loop starts, and once it has drained after
  // stop(): to give the loop per-thread resources (the Redis store's connections, adopt()) and
  // take them back (release()), so the loop can end.
  std::function<void(boost::asio::io_context&)> on_worker_start;
  std::function<void(boost::asio::io_context&)> on_worker_stop;
};

class HttpServer {
 public:
  // Binds and listens (throws std::system_error when it cannot); serves once run() is called.
  HttpServer(ServerOptions options, Handler& handler);
  ~HttpServer();

  std::uint16_t bound_port() const;

  // run(): serves until stop(); returns when every connection has finished.
  void run();
  // stop(): thread-safe and async-signal-unsafe; call it from a signal_set handler or any thread.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floodgate::http
