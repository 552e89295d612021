// File: testlib/redis_server.cc
#include "testlib/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace floodgate::testing {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kRedisServerBinary = "/usr/bin/redis-server";
constexpr auto kStartLimit = 5s;
constexpr int kPortAttempts = 5;

// free_port(): a loopback port nobody listens on right now (bind port 0, read it back, close).
// Another process may take it before redis-server binds it; the constructor then tries again.
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int error = errno;
    close(fd);
    throw std::system_error(error, std::generic_category(), "bind to a free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

// answers_ping(): whether 127.0.0.1:port replies to an inline PING within `limit`. Any reply
// counts: "+PONG", or "-NOAUTH" from a server started with --requirepass.
bool answers_ping(int port, std::chrono::milliseconds limit) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool answered = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    pollfd p{fd, POLLIN, 0};
    char c = 0;
    answered = poll(&p, 1, static_cast<int>(limit.count())) > 0 && recv(fd, &c, 1, 0) == 1 &&
               (c == '+' || c == '-');
  }
  close(fd);
  return answered;
}

std::string make_temp_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/floodgate-redis-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
  }
  return pattern;
}

}  // namespace

RedisServer::RedisServer(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)), dir_(make_temp_dir()) {
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    port_ = free_port();
    if (start(kStartLimit)) return;
  }
  const std::string said = log();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
  throw std::runtime_error("redis-server did not start; its log says:\n" + said);
}

RedisServer::~RedisServer() {
  kill9();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::log() const {
  std::ifstream in(dir_ + "/redis.log");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool RedisServer::start(std::chrono::milliseconds limit) {
  std::vector<std::string> args = {kRedisServerBinary,
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_,
                                   "--daemonize",
                                   "no"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = dir_ + "/redis.log";
  const std::size_t log_from = log().size();
  const pid_t parent = getpid();

  const pid_t pid = fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec. It dies with the test process, and
    // inherits none of the test's descriptors (no client socket outlives its owner in here).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int null_fd = open("/dev/null", O_RDONLY);
    const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null_fd < 0 || log_fd < 0) _exit(127);
    dup2(null_fd, STDIN_FILENO);
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    close_range(3, ~0U, 0);
    execv(kRedisServerBinary, argv.data());
    _exit(127);
  }
  pid_ = pid;
  paused_ = false;

  // Ours is up when OUR log (from this start on: restart() appends) says it is ready and the port
  // answers. A PING alone is not proof: when another process took the port first, that process
  // answers while our redis-server is still on its way out.
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: most likely the port was taken
      pid_ = -1;
      return false;
    }
    if (log().find("Ready to accept connections", log_from) != std::string::npos &&
        answers_ping(port_, 200ms)) {
      return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  kill9();
  return false;
}

void RedisServer::reap(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (Clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  pid_ = -1;
  paused_ = false;
}

void RedisServer::stop() {
  if (!running()) return;
  kill(pid_, SIGTERM);
  if (paused_) kill(pid_, SIGCONT);  // a stopped process handles SIGTERM only once continued
  reap(5s);
}

void RedisServer::kill9() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  paused_ = false;
}

void RedisServer::pause() {
  if (!running() || paused_) return;
  kill(pid_, SIGSTOP);
  // Wait until it has actually stopped, so the caller's next request meets a frozen server.
  const auto deadline = Clock::now() + 5s;
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid_, &status, WUNTRACED | WNOHANG) == pid_) {
      if (!WIFSTOPPED(status)) {  // it died instead
        pid_ = -1;
        return;
      }
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  paused_ = true;
}

void RedisServer::resume() {
  if (!running() || !paused_) return;
  kill(pid_, SIGCONT);
  const auto deadline = Clock::now() + 5s;
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid_, &status, WCONTINUED | WNOHANG) == pid_) {
      if (!WIFCONTINUED(status)) pid_ = -1;  // it died instead
      break;
    }
    std::this_thread::sleep_for(1ms);
  }
  paused_ = false;
}

void RedisServer::restart() {
  stop();
  // The port is ours to reuse (redis-server binds with SO_REUSEADDR); retry while another
  // process briefly holds it.
  const auto deadline = Clock::now() + kStartLimit;
  while (Clock::now() < deadline) {
    if (start(kStartLimit)) return;
    std::this_thread::sleep_for(100ms);
  }
  throw std::runtime_error("redis-server did not restart on port " + std::to_string(port_) +
                           "; its log says:\n" + log());
}

}  // namespace floodgate::testing
