// The example application (examples/api_server.cc) over real HTTP: its limits, headers and 429s.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testlib/process.h"

extern char** environ;

namespace floodgate::testing {
namespace {

using ::testing::HasSubstr;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class ExampleApp : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int attempt = 0; attempt < 3 && pid_ < 0; ++attempt) {
      port_ = free_port();
      const std::string port = std::to_string(port_);
      char* argv[] = {const_cast<char*>(EXAMPLE_BINARY), const_cast<char*>("--port"),
                      const_cast<char*>(port.c_str()), nullptr};
      if (::posix_spawn(&pid_, EXAMPLE_BINARY, nullptr, nullptr, argv, environ) != 0) pid_ = -1;
      // Ready when it accepts a connection (bounded: 5 s).
      for (int i = 0; i < 100 && pid_ > 0; ++i) {
        if (Connection(port_).connected()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      TearDown();
    }
    FAIL() << "the example server did not start";
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(ExampleApp, PublicAllowsTenAMinutePerClientThen429) {
  Connection c(port_);
  for (int i = 0; i < 10; ++i) {
    auto r = c.request("GET", "/api/public");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
    EXPECT_EQ(r->header("X-RateLimit-Remaining"), std::to_string(9 - i));
    EXPECT_EQ(r->header("RateLimit-Policy"), "\"public\";q=10;w=60");
  }
  auto r = c.request("GET", "/api/public");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_NE(r->header("Retry-After"), "");
  EXPECT_THAT(r->header("RateLimit"), HasSubstr("r=0"));
  EXPECT_THAT(r->body, HasSubstr("rate_limited"));
}

TEST_F(ExampleApp, PremiumNeedsAnApiKeyAndCountsPerKey) {
  Connection c(port_);
  auto r = c.request("GET", "/api/premium");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  for (int i = 0; i < 100; ++i) {
    r = c.request("GET", "/api/premium", {}, "X-API-Key: gold-1\r\n");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << i;
  }
  r = c.request("GET", "/api/premium", {}, "X-API-Key: gold-1\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  r = c.request("GET", "/api/premium", {}, "X-API-Key: gold-2\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-RateLimit-Remaining"), "99");
}

TEST_F(ExampleApp, WritesHaveTheirOwnLimitAndReadsAreFree) {
  Connection c(port_);
  for (int i = 0; i < 5; ++i) {
    auto r = c.request("POST", "/api/data", R"({"x":1})", "X-API-Key: writer\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 201) << i;
  }
  auto r = c.request("POST", "/api/data", R"({"x":1})", "X-API-Key: writer\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(r->header("Retry-After"), "12");  // one write per 12 s once the burst is spent
  for (int i = 0; i < 20; ++i) {
    r = c.request("GET", "/api/data", {}, "X-API-Key: writer\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-RateLimit-Limit"), "");  // no limit on reads
  }
}

}  // namespace
}  // namespace floodgate::testing
