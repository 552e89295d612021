// The real binary over real sockets: every endpoint, header and error path of the HTTP service,
// timeouts, and a graceful SIGTERM under load. Loopback only; every wait is bounded.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testlib/process.h"

namespace floodgate::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr std::string_view kFixed3 =
    R"({"key":"it","algorithm":"fixed_window","limit":3,"window":3600})";

TEST(HttpService, AnswersChecksOnOneKeepAliveConnection) {
  Server server({"--threads", "2"});
  Connection c(server.port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    auto r = c.request("POST", "/v1/check", kFixed3);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->header("X-RateLimit-Remaining"), std::to_string(2 - i));
    EXPECT_EQ(r->header("RateLimit-Policy"), R"("default";q=3;w=3600)");
    EXPECT_EQ(r->header("Content-Type"), "application/json");
  }
  auto denied = c.request("POST", "/v1/check", kFixed3);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 429);
  EXPECT_THAT(denied->body, HasSubstr(R"("allowed":false)"));
  EXPECT_FALSE(denied->header("Retry-After").empty());
  EXPECT_THAT(denied->header("RateLimit"), HasSubstr(R"("default";r=0;t=)"));
}

TEST(HttpService, HealthReadyMetricsAndAuth) {
  Server server({});
  Connection c(server.port());
  EXPECT_EQ(c.request("GET", "/health")->body, R"({"status":"ok"})");
  EXPECT_EQ(c.request("GET", "/ready")->status, 200);
  auto auth = c.request("GET", "/v1/auth", {}, "X-Real-IP: 192.0.2.1\r\n");
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->status, 204);
  EXPECT_EQ(auth->header("X-RateLimit-Limit"), "1000");
  auto metrics = c.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->header("Content-Type"), HasSubstr("text/plain"));
  EXPECT_THAT(metrics->body, HasSubstr(R"(floodgate_http_requests_total{code="204"} 1)"));
}

TEST(HttpService, BadJsonIsA400WithTheField) {
  Server server({});
  Connection c(server.port());
  auto r = c.request("POST", "/v1/check", R"({"key":"a","key":"b"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(
      r->body,
      R"({"error":{"code":"duplicate_field","message":"key appears more than once","field":"key"}})");
  // The connection survives a 4xx.
  EXPECT_EQ(c.request("POST", "/v1/check", kFixed3)->status, 200);
}

TEST(HttpService, OversizedBodyIs413) {
  Server server({});
  Connection c(server.port());
  const std::string body = "{\"key\":\"" + std::string(70 * 1024, 'x') + "\"}";
  auto r = c.request("POST", "/v1/check", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_THAT(r->body, HasSubstr("body_too_large"));
}

TEST(HttpService, OversizedHeadersAre431) {
  Server server({});
  Connection c(server.port());
  auto r = c.request("GET", "/health", {}, "X-Big: " + std::string(9000, 'h') + "\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_THAT(r->body, HasSubstr("headers_too_large"));
}

TEST(HttpService, TooManyHeadersAre431) {
  Server server({});
  Connection c(server.port());
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  auto r = c.request("GET", "/health", {}, many);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
}

TEST(HttpService, MalformedHttpIs400AndTheConnectionCloses) {
  Server server({});
  Connection c(server.port());
  ASSERT_TRUE(c.send_raw("THIS IS NOT HTTP\r\n\r\n"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("bad_request"));
  EXPECT_TRUE(c.closed_by_peer(2s));
}

TEST(HttpService, UnknownPathIs404AndWrongMethod405) {
  Server server({});
  Connection c(server.port());
  EXPECT_EQ(c.request("GET", "/admin/secret")->status, 404);
  auto r = c.request("DELETE", "/v1/check");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->header("Allow"), "POST");
}

TEST(HttpService, SlowClientsAreCutOff) {
  Server server({"--request-timeout-ms", "300"});
  Connection c(server.port());
  ASSERT_TRUE(c.send_raw("POST /v1/check HTTP/1.1\r\nHost: x\r\n"));  // and never the rest
  EXPECT_TRUE(c.closed_by_peer(3s));
}

TEST(HttpService, IdleKeepAliveConnectionsAreClosed) {
  Server server({"--idle-timeout-ms", "300"});
  Connection c(server.port());
  EXPECT_EQ(c.request("GET", "/health")->status, 200);
  EXPECT_TRUE(c.closed_by_peer(3s));
}

TEST(HttpService, SigtermFinishesEveryAcceptedRequestAndExitsZero) {
  Server server({"--threads", "2"});
  std::atomic<bool> go{true};
  std::atomic<int> complete{0};
  std::atomic<int> broken{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const std::string body = R"({"key":"load)" + std::to_string(t) + R"(","cost":0})";
      // Keep-alive requests until the server closes the connection or time is up.
      Connection c(server.port());
      for (int i = 0; go.load() && i < 200'000 && c.connected(); ++i) {
        const std::string req =
            "POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
            "\r\n\r\n" + body;
        if (!c.send_raw(req)) break;
        auto r = c.read_response(3s);
        if (!r) break;  // closed before this request was read: it was never accepted
        if (r->status == 200 && r->body.find("\"allowed\":true") != std::string::npos) {
          ++complete;
        } else {
          ++broken;
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  server.signal(SIGTERM);
  const auto status = server.wait_exit(5s);
  go = false;
  for (auto& t : clients) t.join();
  ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM";
  EXPECT_EQ(*status, 0);
  EXPECT_GT(complete.load(), 100);
  EXPECT_EQ(broken.load(), 0);
  EXPECT_THAT(server.output(), HasSubstr("stopped"));
  EXPECT_FALSE(Connection(server.port()).connected());
}

TEST(HttpService, RefusesBadSettingsWithTheirName) {
  auto [status, out] = run_floodgate({"serve", "--backend", "etcd"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("BACKEND"));
  std::tie(status, out) =
      run_floodgate({"serve", "--backend", "redis"}, {"REDIS_URL=http://localhost:6379"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("REDIS_URL"));
  std::tie(status, out) =
      run_floodgate({"serve", "--backend", "redis"}, {"REDIS_ADDR=localhost:notaport"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("REDIS_ADDR"));
  std::tie(status, out) = run_floodgate({"serve", "--port", "0"}, {"DEFAULT_LIMIT=0"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("DEFAULT_LIMIT"));
  std::tie(status, out) = run_floodgate({"serve", "--port", "0"}, {"DEFAULT_WINDOW=-5"});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(out, HasSubstr("DEFAULT_WINDOW"));
}

TEST(HttpService, EnvironmentConfiguresTheDefaults) {
  Server server({}, {"DEFAULT_ALGORITHM=fixed_window", "DEFAULT_LIMIT=2", "DEFAULT_WINDOW=60"});
  Connection c(server.port());
  EXPECT_EQ(c.request("POST", "/v1/check", R"({"key":"env"})")->status, 200);
  EXPECT_EQ(c.request("POST", "/v1/check", R"({"key":"env"})")->status, 200);
  auto r = c.request("POST", "/v1/check", R"({"key":"env"})");
  EXPECT_EQ(r->status, 429);
  EXPECT_THAT(r->body, HasSubstr(R"("algorithm":"fixed_window")"));
}

// LOG_FORMAT in any case is the format it names (JSON used to give text lines).
TEST(HttpService, LogFormatInAnyCaseIsTheFormatItNames) {
  Server json({}, {"LOG_FORMAT=JSON"});
  EXPECT_THAT(json.output(), HasSubstr(R"("level":"info","msg":"listening on)"));
  Server text({"--log-format", "Text"});
  EXPECT_THAT(text.output(), HasSubstr(" info listening on"));
}

TEST(HttpService, ServeHelpListsEverySettingWithItsEnvironmentName) {
  auto [status, out] = run_floodgate({"serve", "--help"});
  EXPECT_EQ(status, 0);
  for (const char* name : {"PORT",
                           "GRPC_PORT",
                           "HOST",
                           "BACKEND",
                           "REDIS_URL",
                           "CONFIG_FILE",
                           "RLS_CONFIG",
                           "LOG_LEVEL",
                           "LOG_FORMAT",
                           "FAILURE_MODE",
                           "THREADS",
                           "ADMIN_TOKEN",
                           "REDIS_ADDR",
                           "REDIS_PASSWORD",
                           "REDIS_DB",
                           "REDIS_POOL_SIZE",
                           "DEFAULT_ALGORITHM",
                           "DEFAULT_WINDOW",
                           "DEFAULT_LIMIT",
                           "ADMIN_PORT",
                           "ADMIN_HOST",
                           "ADMIN_MAX_ENTRIES"}) {
    EXPECT_THAT(out, HasSubstr(std::string("(Env:") + name + ")")) << name;
  }
}

}  // namespace
}  // namespace floodgate::testing

namespace floodgate::testing {
namespace {

TEST(HttpService, MetricsPassPromtool) {
  Server server({});
  Connection c(server.port());
  c.request("POST", "/v1/check", kFixed3);
  c.request("GET", "/v1/auth");
  auto metrics = c.request("GET", "/metrics");
  ASSERT_TRUE(metrics);
  const std::string file = ::testing::TempDir() + "/floodgate-metrics.txt";
  {
    std::ofstream out(file);
    out << metrics->body;
  }
  // promtool (Debian package prometheus) lints the exposition format; exit 0 means clean.
  const std::string command = "promtool check metrics < " + file + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string said;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe) != nullptr) said += buf;
  const int status = pclose(pipe);
  EXPECT_EQ(status, 0) << said;
  EXPECT_EQ(said, "");
}

}  // namespace
}  // namespace floodgate::testing
