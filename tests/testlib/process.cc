#include "testlib/process.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace floodgate::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// spawn(): starts the floodgate binary with `args`, stdout and stderr into a pipe.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
            int& out_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<std::string> argv = {FLOODGATE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.emplace_back(*e);
  envp.insert(envp.end(), env.begin(), env.end());
  auto argv_c = c_strings(argv);
  auto envp_c = c_strings(envp);
  pid_t pid = -1;
  const int rc =
      posix_spawn(&pid, FLOODGATE_BINARY, &actions, nullptr, argv_c.data(), envp_c.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  out_fd = fds[0];
  return pid;
}

// read_some(): appends what `fd` has within `limit`; false on EOF.
bool read_some(int fd, std::string& out, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(limit.count())) <= 0) return true;
  char buf[4096];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n <= 0) return false;
  out.append(buf, static_cast<std::size_t>(n));
  return true;
}

}  // namespace

Server::Server(std::vector<std::string> args, std::vector<std::string> env) {
  std::vector<std::string> full = {"serve", "--host", "127.0.0.1", "--port", "0"};
  // The gRPC service on a free port too, unless the test chose (tests run side by side).
  if (std::find(args.begin(), args.end(), "--grpc-port") == args.end()) {
    full.insert(full.end(), {"--grpc-port", "0"});
  }
  if (std::find(args.begin(), args.end(), "--admin-port") == args.end()) {
    full.insert(full.end(), {"--admin-port", "0"});
  }
  full.insert(full.end(), args.begin(), args.end());
  pid_ = spawn(full, env, out_fd_);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    const auto at = output_.find("listening on 127.0.0.1:");
    if (at != std::string::npos) {
      port_ = std::atoi(output_.c_str() + at + std::strlen("listening on 127.0.0.1:"));
      if (port_ > 0) return;
    }
    if (!read_some(out_fd_, output_, std::chrono::milliseconds(100))) break;
  }
  throw std::runtime_error("floodgate did not start listening; it said: " + output_);
}

Server::~Server() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
}

void Server::signal(int signo) const { kill(pid_, signo); }

int Server::grpc_port() {
  static constexpr std::string_view kLine = "(gRPC) listening on 127.0.0.1:";
  if (grpc_port_ == 0 && wait_for_output(kLine, std::chrono::seconds(5))) {
    grpc_port_ = std::atoi(output_.c_str() + output_.find(kLine) + kLine.size());
  }
  return grpc_port_;
}

int Server::admin_port() {
  static constexpr std::string_view kLine = "admin API listening on 127.0.0.1:";
  if (admin_port_ == 0 && wait_for_output(kLine, std::chrono::seconds(5))) {
    admin_port_ = std::atoi(output_.c_str() + output_.find(kLine) + kLine.size());
  }
  return admin_port_;
}

std::optional<int> Server::wait_exit(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

std::string Server::output() {
  for (;;) {
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0 || !read_some(out_fd_, output_, std::chrono::milliseconds(0))) break;
  }
  return output_;
}

bool Server::wait_for_output(std::string_view text, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (output().find(text) == std::string::npos) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::pair<int, std::string> run_floodgate(const std::vector<std::string>& args,
                                          const std::vector<std::string>& env) {
  int fd = -1;
  const pid_t pid = spawn(args, env, fd);
  std::string out;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline && read_some(fd, out, std::chrono::milliseconds(100))) {
  }
  close(fd);
  int status = 0;
  if (Clock::now() >= deadline) kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return v;
    }
  }
  return "";
}

Connection::Connection(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::~Connection() {
  if (fd_ >= 0) close(fd_);
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "floodgate-test-XXXXXX").string();
  path_ = ::mkdtemp(pattern.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string TempDir::write(const std::string& name, const std::string& text) const {
  const std::filesystem::path target = std::filesystem::path(path_) / name;
  const std::filesystem::path tmp = std::filesystem::path(path_) / (name + ".tmp");
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, target);
  return target.string();
}

bool Connection::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::optional<HttpResponse> Connection::read_response(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  auto more = [&] {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    std::string chunk;
    if (!read_some(fd_, chunk, left)) return false;
    buffer_ += chunk;
    return true;
  };
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!more()) return std::nullopt;
  }
  HttpResponse r;
  const std::string head = buffer_.substr(0, end);
  std::size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12) return std::nullopt;
  r.status = std::atoi(status_line.c_str() + 9);
  std::size_t content_length = 0;
  while (line_end != std::string::npos && line_end < head.size()) {
    const std::size_t next = head.find("\r\n", line_end + 2);
    const std::string line = head.substr(
        line_end + 2, next == std::string::npos ? std::string::npos : next - line_end - 2);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers.emplace_back(line.substr(0, colon), value);
    }
    line_end = next;
  }
  if (auto cl = r.header("Content-Length"); !cl.empty()) content_length = std::stoul(cl);
  while (buffer_.size() < end + 4 + content_length) {
    if (!more()) return std::nullopt;
  }
  r.body = buffer_.substr(end + 4, content_length);
  buffer_.erase(0, end + 4 + content_length);
  return r;
}

std::optional<std::string> Connection::read_until(std::string_view marker,
                                                  std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  std::size_t at;
  while ((at = buffer_.find(marker)) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::string chunk;
    if (!read_some(fd_, chunk, left)) return std::nullopt;
    buffer_ += chunk;
  }
  std::string out = buffer_.substr(0, at + marker.size());
  buffer_.erase(0, at + marker.size());
  return out;
}

std::optional<HttpResponse> Connection::request(std::string_view method, std::string_view target,
                                                std::string_view body,
                                                std::string_view extra_headers) {
  std::string req;
  req += method;
  req += " ";
  req += target;
  req += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  req += extra_headers;
  if (!body.empty() || method == "POST") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req += body;
  if (!send_raw(req)) return std::nullopt;
  return read_response();
}

bool Connection::closed_by_peer(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      char c;
      const ssize_t n = recv(fd_, &c, 1, MSG_PEEK);
      if (n <= 0) return true;
      return false;  // data, not a close
    }
  }
  return false;
}

}  // namespace floodgate::testing
