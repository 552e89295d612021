// Test helpers for driving the real floodgate binary: start it on a free loopback port, talk raw
// HTTP/1.1 to it, stop it by PID. Everything is bounded in time.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace floodgate::testing {

// Server: `floodgate serve --host 127.0.0.1 --port 0 --grpc-port 0 --admin-port 0 <args>` (the
// last two unless `args` names them); waits for its "listening on" line.
class Server {
 public:
  explicit Server(std::vector<std::string> args, std::vector<std::string> env = {});
  ~Server();  // SIGKILL if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const { return port_; }
  // grpc_port(): the Envoy rate limit service's port (the server is given --grpc-port 0 unless
  // the test passes one), read from its log; 0 when it does not listen within 5 s.
  int grpc_port();
  // admin_port(): the admin API's port (--admin-port 0 unless the test passes one), read from its
  // log; 0 when it does not listen within 5 s.
  int admin_port();
  pid_t pid() const { return pid_; }
  // signal(): sends `signo` to the server's PID.
  void signal(int signo) const;
  // wait_exit(): the exit status within `limit`, or nullopt if it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds limit);
  // output(): what the server has written to stdout so far (drains the pipe).
  std::string output();
  // wait_for_output(): whether `text` appears in the output within `limit`.
  bool wait_for_output(std::string_view text, std::chrono::milliseconds limit);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  int grpc_port_ = 0;
  int admin_port_ = 0;
  std::string output_;
  bool exited_ = false;
};

// eventually(): whether `pred` holds within `limit`, asked every 10 ms.
template <class Pred>
bool eventually(std::chrono::milliseconds limit, Pred pred) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// TempDir: a directory of its own under the system's temp directory, removed with everything in
// it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // write(): writes `text` to `name` in the directory (beside, then renamed: a reader never sees
  // half a file); returns its path.
  std::string write(const std::string& name, const std::string& text) const;
  std::string path() const { return path_; }

 private:
  std::string path_;
};

// read_text(): a file's whole content ("" when it cannot be read).
std::string read_text(const std::string& path);

// run_floodgate(): runs the binary to completion (bounded); returns {exit status, stdout+stderr}.
std::pair<int, std::string> run_floodgate(const std::vector<std::string>& args,
                                          const std::vector<std::string>& env = {});

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string header(std::string_view name) const;  // case-insensitive; "" if absent
};

// Connection: one keep-alive TCP connection to 127.0.0.1:port.
class Connection {
 public:
  explicit Connection(int port);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send_raw(std::string_view bytes);
  // read_response(): one whole response, or nullopt on close, error or timeout.
  std::optional<HttpResponse> read_response(
      std::chrono::milliseconds limit = std::chrono::seconds(5));
  std::optional<HttpResponse> request(std::string_view method, std::string_view target,
                                      std::string_view body = {},
                                      std::string_view extra_headers = {});
  // read_until(): the bytes received up to and including `marker` (a streamed body: one
  // Server-Sent Event ends with "\n\n"), or nullopt on close, error or timeout.
  std::optional<std::string> read_until(std::string_view marker,
                                        std::chrono::milliseconds limit = std::chrono::seconds(5));
  // closed_by_peer(): true if the server closes the connection within `limit`.
  bool closed_by_peer(std::chrono::milliseconds limit);

 private:
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace floodgate::testing
