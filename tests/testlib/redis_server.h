// File: testlib/redis_server.h
//
// RedisServer: a real /usr/bin/redis-server for tests, on a free loopback port, with no
// persistence (--save "", --appendonly no) and its own temporary directory. It is started,
// stopped, paused and killed by PID only, never by name, and every wait is bounded.
//
// Example:
//   floodgate::testing::RedisServer redis({"--requirepass", "secret"});
//   connect_to("127.0.0.1", redis.port());
//   redis.pause();   // SIGSTOP: the port still accepts connections, nothing answers
//   redis.resume();
//   redis.restart(); // same port, empty data set
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace floodgate::testing {

class RedisServer {
 public:
  // Starts redis-server with `extra_args` appended (e.g. {"--maxmemory", "10mb"}) and waits until
  // its log says it is ready and the port answers PING (any reply, so "-NOAUTH" counts). Throws
  // std::runtime_error, with the server's log, if it does not within 5 s (after a few tries on
  // other ports).
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();  // SIGKILL by PID if running, then removes the temporary directory
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }  // -1 while stopped
  bool running() const { return pid_ > 0; }
  const std::string& dir() const { return dir_; }
  // log(): what the server has written to its log file so far.
  std::string log() const;

  // stop(): SIGTERM, up to 5 s for the process to exit, then SIGKILL. No-op when stopped.
  void stop();
  // kill9(): SIGKILL, as a crash would. No-op when stopped.
  void kill9();
  // pause() / resume(): SIGSTOP / SIGCONT. A paused server keeps its socket: clients connect (the
  // kernel completes the handshake) but get no reply until resumed.
  void pause();
  void resume();
  // restart(): stops the server if running and starts a new one on the same port (empty data).
  void restart();

 private:
  // start(): one attempt on port_; true once the server answers PING.
  bool start(std::chrono::milliseconds limit);
  // reap(): waits (bounded) for the child to exit after a signal; SIGKILL if it does not.
  void reap(std::chrono::milliseconds limit);

  std::vector<std::string> extra_args_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool paused_ = false;
};

}  // namespace floodgate::testing
