// The Envoy rate limit service end to end: the real floodgate binary, a real gRPC client (the C++
// stub generated from proto/), on the memory store and on a real redis-server. The semantics
// case by case are in tests/unit/rls/service_test.cc; here: the wire, the status codes, health,
// POST /json, hot reload, and exact counts under concurrency, also across two instances.
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/grpc/rls_server.h"
#include "testlib/process.h"
#include "testlib/redis_server.h"

namespace floodgate::testing {
namespace {

namespace pb = ::envoy::service::ratelimit::v3;
using ::testing::HasSubstr;
using Code = pb::RateLimitResponse::Code;

const char* kConfig = R"(# envoyproxy/ratelimit's documented style, nested three levels
domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: minute
      requests_per_unit: 3
  - key: path
    value: /static/*
    rate_limit:
      unlimited: true
  - key: tenant
    value: acme
    descriptors:
      - key: plan
        descriptors:
          - key: user
            rate_limit:
              name: per_user
              unit: hour
              requests_per_unit: 5
  - key: shared
    rate_limit:
      unit: hour
      requests_per_unit: 50
)";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fg-rls-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    // Written aside and renamed, as editors and ConfigMaps do: the watcher never sees half a file.
    std::ofstream(file + ".tmp") << text;
    std::filesystem::rename(file + ".tmp", file);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

pb::RateLimitRequest request(const std::string& domain,
                             std::vector<std::vector<std::pair<std::string, std::string>>> ds,
                             std::uint32_t hits = 0) {
  pb::RateLimitRequest r;
  r.set_domain(domain);
  r.set_hits_addend(hits);
  for (const auto& d : ds) {
    auto* desc = r.add_descriptors();
    for (const auto& [k, v] : d) {
      auto* e = desc->add_entries();
      e->set_key(k);
      e->set_value(v);
    }
  }
  return r;
}

class Client {
 public:
  explicit Client(int port, std::shared_ptr<::grpc::ChannelCredentials> credentials =
                                ::grpc::InsecureChannelCredentials())
      : Client("127.0.0.1:" + std::to_string(port), std::move(credentials)) {}
  // `target`: a gRPC target ("host:port", "unix:/path").
  Client(const std::string& target, std::shared_ptr<::grpc::ChannelCredentials> credentials)
      : channel_(::grpc::CreateChannel(target, credentials)),
        stub_(pb::RateLimitService::NewStub(channel_)) {}

  ::grpc::Status call(const pb::RateLimitRequest& req, pb::RateLimitResponse& resp) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub_->ShouldRateLimit(&ctx, req, &resp);
  }
  pb::RateLimitResponse ok(const pb::RateLimitRequest& req) {
    pb::RateLimitResponse resp;
    const ::grpc::Status s = call(req, resp);
    EXPECT_TRUE(s.ok()) << s.error_code() << " " << s.error_message();
    return resp;
  }

  // many(): `n` calls of `req` in flight at once on this channel; the number answered OK.
  int many(const pb::RateLimitRequest& req, int n) {
    struct One {
      ::grpc::ClientContext ctx;
      pb::RateLimitResponse resp;
    };
    std::vector<std::unique_ptr<One>> calls;
    std::mutex mu;
    std::condition_variable cv;
    int pending = n;
    std::atomic<int> ok{0};
    for (int i = 0; i < n; ++i) {
      auto& one = *calls.emplace_back(std::make_unique<One>());
      one.ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      stub_->async()->ShouldRateLimit(&one.ctx, &req, &one.resp, [&](::grpc::Status s) {
        if (s.ok() && one.resp.overall_code() == pb::RateLimitResponse::OK) ++ok;
        EXPECT_TRUE(s.ok()) << s.error_message();
        std::lock_guard lock(mu);
        if (--pending == 0) cv.notify_one();
      });
    }
    std::unique_lock lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return pending == 0; }));
    return ok.load();
  }

  std::shared_ptr<::grpc::Channel> channel() const { return channel_; }

 private:
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<pb::RateLimitService::Stub> stub_;
};

class RlsGrpc : public ::testing::Test {
 protected:
  TempDir dir;
  std::string config = dir.write("config.yaml", kConfig);
};

TEST_F(RlsGrpc, AnswersOverTheWireAsEnvoyExpects) {
  Server server({"--rls-config", config, "--limit-response-headers", "true"});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());

  for (std::uint32_t remaining : {2u, 1u, 0u}) {
    const auto r = client.ok(request("edge", {{{"remote_address", "10.0.0.1"}}}));
    EXPECT_EQ(r.overall_code(), pb::RateLimitResponse::OK);
    ASSERT_EQ(r.statuses_size(), 1);
    const auto& st = r.statuses(0);
    EXPECT_EQ(st.code(), pb::RateLimitResponse::OK);
    EXPECT_EQ(st.current_limit().requests_per_unit(), 3u);
    EXPECT_EQ(st.current_limit().unit(), pb::RateLimitResponse::RateLimit::MINUTE);
    EXPECT_EQ(st.limit_remaining(), remaining);
    EXPECT_GT(
        st.duration_until_reset().seconds() * 1'000'000'000LL + st.duration_until_reset().nanos(),
        0);
    EXPECT_LE(st.duration_until_reset().seconds(), 60);
    ASSERT_EQ(r.response_headers_to_add_size(), 3);
    EXPECT_EQ(r.response_headers_to_add(0).key(), "RateLimit-Limit");
    EXPECT_EQ(r.response_headers_to_add(0).value(), "3");
    EXPECT_EQ(r.response_headers_to_add(1).key(), "RateLimit-Remaining");
    EXPECT_EQ(r.response_headers_to_add(1).value(), std::to_string(remaining));
  }
  const auto over = client.ok(request("edge", {{{"remote_address", "10.0.0.1"}}}));
  EXPECT_EQ(over.overall_code(), pb::RateLimitResponse::OVER_LIMIT);
  EXPECT_EQ(over.statuses(0).code(), pb::RateLimitResponse::OVER_LIMIT);

  // Several descriptors: each its own status; the named limit reports its name.
  const auto mixed =
      client.ok(request("edge", {{{"tenant", "acme"}, {"plan", "gold"}, {"user", "u1"}},
                                 {{"path", "/static/app.js"}},
                                 {{"nothing", "here"}}}));
  EXPECT_EQ(mixed.overall_code(), pb::RateLimitResponse::OK);
  ASSERT_EQ(mixed.statuses_size(), 3);
  EXPECT_EQ(mixed.statuses(0).current_limit().name(), "per_user");
  EXPECT_EQ(mixed.statuses(0).limit_remaining(), 4u);
  EXPECT_EQ(mixed.statuses(1).limit_remaining(), 4294967295u);
  EXPECT_FALSE(mixed.statuses(1).has_current_limit());
  EXPECT_FALSE(mixed.statuses(2).has_current_limit());

  // An unknown domain: OK, no limit.
  const auto unknown = client.ok(request("nope", {{{"remote_address", "10.0.0.1"}}}));
  EXPECT_EQ(unknown.overall_code(), pb::RateLimitResponse::OK);
  EXPECT_FALSE(unknown.statuses(0).has_current_limit());

  // The request's own limit and a descriptor's hits_addend.
  auto own = request("edge", {{{"tenant", "acme"}, {"plan", "x"}, {"user", "o"}}});
  own.mutable_descriptors(0)->mutable_limit()->set_requests_per_unit(10);
  own.mutable_descriptors(0)->mutable_limit()->set_unit(::envoy::type::v3::DAY);
  own.mutable_descriptors(0)->mutable_hits_addend()->set_value(4);
  const auto own_r = client.ok(own);
  EXPECT_EQ(own_r.statuses(0).current_limit().requests_per_unit(), 10u);
  EXPECT_EQ(own_r.statuses(0).current_limit().unit(), pb::RateLimitResponse::RateLimit::DAY);
  EXPECT_EQ(own_r.statuses(0).limit_remaining(), 6u);
}

TEST_F(RlsGrpc, BadRequestsGetStatusCodesThatNameTheProblem) {
  Server server({"--rls-config", config});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  pb::RateLimitResponse resp;

  auto status = client.call(request("", {{{"a", "b"}}}), resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("domain"));

  status = client.call(request("edge", {}), resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("descriptor list must not be empty"));

  status = client.call(request("edge", {{{"", "v"}}}), resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("descriptors[0].entries[0].key"));

  status = client.call(request("edge", {{{"k", std::string(2 << 20, 'x')}}}), resp);
  EXPECT_EQ(status.error_code(), ::grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Still serving after all that.
  EXPECT_TRUE(client.call(request("edge", {{{"remote_address", "z"}}}), resp).ok());
}

TEST_F(RlsGrpc, TheStandardHealthServiceAnswersServing) {
  Server server({"--rls-config", config});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  auto health = ::grpc::health::v1::Health::NewStub(client.channel());
  for (const char* service : {"", "envoy.service.ratelimit.v3.RateLimitService"}) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    ::grpc::health::v1::HealthCheckResponse resp;
    const auto status = health->Check(&ctx, req, &resp);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(resp.status(), ::grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(RlsGrpc, HealthWatchSaysServingThenNotServingOnShutdown) {
  Server server({"--rls-config", config});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  auto health = ::grpc::health::v1::Health::NewStub(client.channel());
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  ::grpc::health::v1::HealthCheckRequest req;
  auto reader = health->Watch(&ctx, req);
  ::grpc::health::v1::HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), ::grpc::health::v1::HealthCheckResponse::SERVING);

  // An unknown service: NOT_FOUND for Check.
  ::grpc::ClientContext check_ctx;
  req.set_service("no.such.Service");
  EXPECT_EQ(health->Check(&check_ctx, req, &resp).error_code(), ::grpc::StatusCode::NOT_FOUND);

  server.signal(SIGTERM);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), ::grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(server.wait_exit(std::chrono::seconds(10)), 0) << server.output();
}

TEST_F(RlsGrpc, JsonOnTheHttpPortAnswersTheSameCall) {
  Server server({"--rls-config", config});
  Connection http(server.port());
  const std::string body =
      R"({"domain":"edge","descriptors":[{"entries":[{"key":"tenant","value":"acme"},{"key":"plan","value":"p"},{"key":"user","value":"j"}]}],"hitsAddend":5})";
  auto r = http.request("POST", "/json", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->body, HasSubstr(R"("overallCode":"OK")"));
  EXPECT_THAT(r->body, HasSubstr(R"("name":"per_user")"));
  r = http.request("POST", "/json", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429) << r->body;
  EXPECT_THAT(r->body, HasSubstr(R"("overallCode":"OVER_LIMIT")"));
  r = http.request("POST", "/json", R"({"domain":"edge","descriptors":[{"entries":[{"kee":1}]}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("kee"));
  r = http.request("POST", "/json", R"({"domain":"","descriptors":[]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_THAT(r->body, HasSubstr("domain"));
  r = http.request("GET", "/metrics");
  ASSERT_TRUE(r);
  EXPECT_THAT(
      r->body,
      HasSubstr(
          R"(floodgate_rls_over_limit_total{domain="edge",descriptor="edge.tenant_acme.plan.user"} 5)"));
}

TEST_F(RlsGrpc, ResponseDynamicMetadataCarriesTheRequestAndThePassedLimitsMetadata) {
  const std::string with_metadata = dir.write("metadata.yaml", R"(
domain: meta
descriptors:
  - key: service
    value: one
    rate_limit: {unit: minute, requests_per_unit: 10}
    metadata: {name: service_1, cost: 2.5, labels: {env: prod}}
)");
  Server server({"--rls-config", with_metadata, "--response-dynamic-metadata", "true"});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  auto req = request("meta", {{{"service", "one"}}});
  req.set_hits_addend(3);
  const auto r = client.ok(req);
  ASSERT_TRUE(r.has_dynamic_metadata());
  const auto& fields = r.dynamic_metadata().fields();
  EXPECT_EQ(fields.at("domain").string_value(), "meta");
  EXPECT_EQ(fields.at("hitsAddend").number_value(), 3);
  const auto& descriptors = fields.at("descriptors").list_value();
  ASSERT_EQ(descriptors.values_size(), 1);
  EXPECT_EQ(descriptors.values(0)
                .struct_value()
                .fields()
                .at("entries")
                .list_value()
                .values(0)
                .string_value(),
            "service=one");
  const auto& metadata = fields.at("metadata").struct_value().fields();
  EXPECT_EQ(metadata.at("name").string_value(), "service_1");
  EXPECT_EQ(metadata.at("cost").number_value(), 2.5);
  EXPECT_EQ(metadata.at("labels").struct_value().fields().at("env").string_value(), "prod");

  // The same in POST /json, in protobuf's JSON form; without the setting, no dynamicMetadata.
  Connection http(server.port());
  auto j = http.request(
      "POST", "/json",
      R"({"domain":"meta","descriptors":[{"entries":[{"key":"service","value":"one"}]}]})");
  ASSERT_TRUE(j);
  EXPECT_THAT(j->body, HasSubstr(R"("dynamicMetadata":{)"));
  EXPECT_THAT(j->body, HasSubstr(R"("name":"service_1")"));
  Server plain({"--rls-config", with_metadata});
  ASSERT_GT(plain.grpc_port(), 0) << plain.output();
  EXPECT_FALSE(Client(plain.grpc_port()).ok(req).has_dynamic_metadata());
}

TEST_F(RlsGrpc, AChangedConfigFileIsPickedUpAndABadOneIsRefused) {
  Server server({"--rls-config", dir.path()});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  EXPECT_EQ(client.ok(request("edge", {{{"remote_address", "h"}}})).statuses(0).limit_remaining(),
            2u);

  dir.write("config.yaml",
            "domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: "
            "{unit: minute, requests_per_unit: 100}\n");
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    seen = client.ok(request("edge", {{{"remote_address", "h2"}}}))
               .statuses(0)
               .current_limit()
               .requests_per_unit() == 100;
  }
  EXPECT_TRUE(seen) << server.output();

  dir.write("config.yaml",
            "domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: "
            "{unit: fortnight, requests_per_unit: 1}\n");
  EXPECT_TRUE(server.wait_for_output("config.yaml:4", std::chrono::seconds(5))) << server.output();
  EXPECT_EQ(client.ok(request("edge", {{{"remote_address", "h3"}}}))
                .statuses(0)
                .current_limit()
                .requests_per_unit(),
            100u);
}

TEST_F(RlsGrpc, ABadConfigStopsTheStartNamingFileAndLine) {
  const std::string bad = dir.write("bad.yaml",
                                    "domain: edge\ndescriptors:\n  - key: a\n    "
                                    "rate_limit: {unit: lightyear, requests_per_unit: 1}\n");
  const auto [status, output] =
      run_floodgate({"serve", "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0",
                     "--admin-port", "-1", "--rls-config", bad});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(output, HasSubstr("bad.yaml:4"));
}

// A CA, a server certificate for 127.0.0.1 and two client certificates (SAN envoy.internal and
// intruder.internal), made with the openssl command in `dir`, their names prefixed by `prefix`
// ("ca.pem", "server.key", "envoy.pem", ...).
void make_certificates(const TempDir& dir, const std::string& prefix = "") {
  dir.write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  dir.write("envoy.ext", "subjectAltName=DNS:envoy.internal\nextendedKeyUsage=clientAuth\n");
  dir.write("intruder.ext", "subjectAltName=DNS:intruder.internal\nextendedKeyUsage=clientAuth\n");
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string ca = prefix + "ca";
  std::string script = "set -e; cd '" + dir.path() + "'; exec 2> openssl.log; openssl req -x509" +
                       ec + " -keyout " + ca + ".key -out " + ca + ".pem -days 2 -subj /CN=" + ca +
                       ";";
  for (const std::string name : {"server", "envoy", "intruder"}) {
    const std::string n = prefix + name;
    script += "openssl req" + ec + " -keyout " + n + ".key -out " + n + ".csr -subj /CN=" + n +
              "; openssl x509 -req -in " + n + ".csr -CA " + ca + ".pem -CAkey " + ca +
              ".key -CAcreateserial -days 2 -extfile " + name + ".ext -out " + n + ".pem;";
  }
  ASSERT_EQ(std::system(("bash -c \"" + script + "\"").c_str()), 0)
      << read_text(dir.path() + "/openssl.log");
}

std::shared_ptr<::grpc::ChannelCredentials> tls_client(const TempDir& dir,
                                                       const std::string& client = "",
                                                       const std::string& ca = "ca") {
  ::grpc::SslCredentialsOptions o;
  o.pem_root_certs = read_text(dir.path() + "/" + ca + ".pem");
  if (!client.empty()) {
    o.pem_private_key = read_text(dir.path() + "/" + client + ".key");
    o.pem_cert_chain = read_text(dir.path() + "/" + client + ".pem");
  }
  return ::grpc::SslCredentials(o);
}

// envoyproxy/ratelimit's GRPC_UDS: the service on a Unix socket instead of GRPC_HOST:GRPC_PORT.
TEST_F(RlsGrpc, ListensOnAUnixSocketWithGrpcUds) {
  const std::string socket = dir.path() + "/rls.sock";
  Server server({"--rls-config", config}, {"GRPC_UDS=" + socket});
  ASSERT_TRUE(server.wait_for_output("(gRPC) listening on unix:" + socket, std::chrono::seconds(5)))
      << server.output();
  Client client("unix:" + socket, ::grpc::InsecureChannelCredentials());
  const auto edge = request("edge", {{{"remote_address", "10.0.0.9"}}});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.ok(edge).overall_code(), pb::RateLimitResponse::OK);
  EXPECT_EQ(client.ok(edge).overall_code(), pb::RateLimitResponse::OVER_LIMIT);
}

// LOG_DECISIONS=denied: a line for each denied HTTP check and Envoy descriptor, none for the
// allowed ones.
TEST_F(RlsGrpc, LogDecisionsWritesALinePerDeniedDecision) {
  Server server({"--rls-config", config, "--log-format", "text"}, {"LOG_DECISIONS=denied"});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client client(server.grpc_port());
  for (int i = 0; i < 4; ++i) client.ok(request("edge", {{{"remote_address", "10.0.0.42"}}}));
  Connection c(server.port());
  const std::string body = R"({"key":"bob","algorithm":"fixed_window","limit":1,"window":60})";
  EXPECT_EQ(c.request("POST", "/v1/check", body)->status, 200);
  EXPECT_EQ(c.request("POST", "/v1/check", body)->status, 429);
  EXPECT_TRUE(
      server.wait_for_output("decision denied source=http path=/v1/check key=\"bob\" "
                             "algorithm=fixed_window limit=1 remaining=0 retry_after_ms=",
                             std::chrono::seconds(2)))
      << server.output();
  EXPECT_THAT(server.output(), HasSubstr("decision denied source=grpc path=edge key=\""));
  EXPECT_THAT(server.output(), HasSubstr("remote_address_10.0.0.42"));
  EXPECT_THAT(server.output(), ::testing::Not(HasSubstr("decision allowed")));
  const std::string out = server.output();
  std::size_t lines = 0;
  for (std::size_t at = out.find("decision denied"); at != std::string::npos;
       at = out.find("decision denied", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 2u) << out;
}

TEST(RlsTls, ASanNamesTheClientAsAHostNameWould) {
  using floodgate::grpc::san_matches;
  EXPECT_TRUE(san_matches("envoy.internal", "envoy.internal"));
  EXPECT_TRUE(san_matches("Envoy.Internal", "envoy.internal"));
  EXPECT_FALSE(san_matches("envoy.internal", "envoy.internal.evil"));
  EXPECT_TRUE(san_matches("*.mesh.local", "envoy.mesh.local"));
  EXPECT_FALSE(san_matches("*.mesh.local", "a.envoy.mesh.local"));  // one label only
  EXPECT_FALSE(san_matches("*.mesh.local", "mesh.local"));
  EXPECT_FALSE(san_matches("*.mesh.local", ".mesh.local"));
  EXPECT_TRUE(san_matches("10.0.0.7", "10.0.0.7"));
  EXPECT_FALSE(san_matches("", "envoy.internal"));
}

// envoyproxy/ratelimit's GRPC_SERVER_USE_TLS, GRPC_SERVER_TLS_CERT/KEY, GRPC_CLIENT_TLS_CACERT
// and GRPC_CLIENT_TLS_SAN: TLS, then mutual TLS, then mutual TLS naming the client.
TEST_F(RlsGrpc, ServesOverTlsAndMutualTlsWithEnvoyRatelimitsSettings) {
  make_certificates(dir);
  const std::string d = dir.path();
  const auto edge = request("edge", {{{"remote_address", "10.0.0.1"}}});
  std::vector<std::string> env = {"GRPC_SERVER_USE_TLS=true",
                                  "GRPC_SERVER_TLS_CERT=" + d + "/server.pem",
                                  "GRPC_SERVER_TLS_KEY=" + d + "/server.key"};
  {
    Server server({"--rls-config", config}, env);
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    EXPECT_THAT(server.output(), HasSubstr(":" + std::to_string(server.grpc_port()) + " (TLS)"));
    Client client(server.grpc_port(), tls_client(dir));
    EXPECT_EQ(client.ok(edge).overall_code(), pb::RateLimitResponse::OK);
    Client plain(server.grpc_port());  // h2c to a TLS port: no answer
    pb::RateLimitResponse resp;
    EXPECT_EQ(plain.call(edge, resp).error_code(), ::grpc::StatusCode::UNAVAILABLE);
  }
  env.push_back("GRPC_CLIENT_TLS_CACERT=" + d + "/ca.pem");
  {
    Server server({"--rls-config", config}, env);
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    EXPECT_THAT(server.output(), HasSubstr(" (mutual TLS)"));
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir, "envoy")).ok(edge).overall_code(),
              pb::RateLimitResponse::OK);
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir, "intruder")).ok(edge).overall_code(),
              pb::RateLimitResponse::OK);  // any certificate the CA signed
    pb::RateLimitResponse resp;
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir)).call(edge, resp).error_code(),
              ::grpc::StatusCode::UNAVAILABLE);  // no client certificate: no handshake
  }
  env.push_back("GRPC_CLIENT_TLS_SAN=envoy.internal");
  {
    Server server({"--rls-config", config}, env);
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir, "envoy")).ok(edge).overall_code(),
              pb::RateLimitResponse::OK);
    pb::RateLimitResponse resp;
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir, "intruder")).call(edge, resp).error_code(),
              ::grpc::StatusCode::UNAVAILABLE);  // signed, but not the client named
  }

  {
    // A rotated certificate (another CA's) is served without a restart, within the refresh.
    Server server({"--rls-config", config}, {env[0], env[1], env[2]});
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    EXPECT_EQ(Client(server.grpc_port(), tls_client(dir)).ok(edge).overall_code(),
              pb::RateLimitResponse::OK);
    make_certificates(dir, "next-");
    std::filesystem::rename(d + "/next-server.key", d + "/server.key");
    std::filesystem::rename(d + "/next-server.pem", d + "/server.pem");
    // Asked every 250 ms (each failed handshake logs a line), 25 s at most.
    bool rotated = false;
    for (int i = 0; i < 100 && !rotated; ++i) {
      pb::RateLimitResponse r;  // a new channel each time: a fresh handshake
      rotated = Client(server.grpc_port(), tls_client(dir, "", "next-ca")).call(edge, r).ok();
      if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    EXPECT_TRUE(rotated) << server.output();
  }

  // What cannot work stops the start, naming the variable.
  const auto refused = [&](std::vector<std::string> e, const std::string& message) {
    const auto [status, output] =
        run_floodgate({"serve", "--host", "127.0.0.1", "--port", "0", "--grpc-port", "0",
                       "--admin-port", "-1", "--rls-config", config},
                      e);
    EXPECT_EQ(status, 2) << output;
    EXPECT_THAT(output, HasSubstr(message));
  };
  refused({"GRPC_SERVER_USE_TLS=true"}, "GRPC_SERVER_TLS_CERT: GRPC_SERVER_USE_TLS needs it");
  refused({"GRPC_SERVER_USE_TLS=true", "GRPC_SERVER_TLS_CERT=" + d + "/server.pem",
           "GRPC_SERVER_TLS_KEY=" + d + "/none.key"},
          "GRPC_SERVER_TLS_KEY: cannot read " + d + "/none.key");
  refused({"GRPC_SERVER_USE_TLS=true", "GRPC_SERVER_TLS_CERT=" + d + "/server.ext",
           "GRPC_SERVER_TLS_KEY=" + d + "/server.key"},
          "GRPC_SERVER_TLS_CERT: " + d + "/server.ext holds no PEM block");
  refused({"GRPC_SERVER_USE_TLS=true", "GRPC_SERVER_TLS_CERT=" + d + "/server.pem",
           "GRPC_SERVER_TLS_KEY=" + d + "/server.key", "GRPC_CLIENT_TLS_SAN=envoy.internal"},
          "GRPC_CLIENT_TLS_SAN: needs GRPC_CLIENT_TLS_CACERT");
}

TEST_F(RlsGrpc, ManyConcurrentCallsOnOneKeyAdmitExactlyTheLimit) {
  Server server({"--rls-config", config, "--threads", "2"});
  ASSERT_GT(server.grpc_port(), 0) << server.output();
  Client a(server.grpc_port());
  Client b(server.grpc_port());
  const auto req = request("edge", {{{"shared", "one"}}});
  std::atomic<int> total{0};
  std::thread t1([&] { total += a.many(req, 100); });
  std::thread t2([&] { total += b.many(req, 100); });
  t1.join();
  t2.join();
  EXPECT_EQ(total.load(), 50);
}

// The same on Redis, with two floodgate instances sharing it.
// A Deployment of envoyproxy/ratelimit moved over unchanged: its environment alone (config under
// RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/config, REDIS_URL as host:port, REDIS_AUTH) runs floodgate on
// that Redis; what floodgate cannot honour stops the start naming the variable.
TEST_F(RlsGrpc, RunsOnEnvoyRatelimitsOwnEnvironment) {
  RedisServer redis({"--requirepass", "s3cret"});
  std::filesystem::create_directories(dir.path() + "/srv/ratelimit/config");
  dir.write("srv/ratelimit/config/config.yaml", kConfig);
  const std::vector<std::string> upstream = {"RUNTIME_ROOT=" + dir.path() + "/srv",
                                             "RUNTIME_SUBDIRECTORY=ratelimit",
                                             "RUNTIME_WATCH_ROOT=false",
                                             "USE_STATSD=false",
                                             "BACKEND_TYPE=redis",
                                             "REDIS_SOCKET_TYPE=tcp",
                                             "REDIS_TYPE=SINGLE",
                                             "REDIS_URL=127.0.0.1:" + std::to_string(redis.port()),
                                             "REDIS_AUTH=s3cret",
                                             "LOG_LEVEL=DEBUG"};
  {
    Server server({"--store-timeout-ms", "1000"}, upstream);
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    Client client(server.grpc_port());
    for (std::uint32_t remaining : {2u, 1u}) {
      const auto r = client.ok(request("edge", {{{"remote_address", "10.9.9.9"}}}));
      ASSERT_EQ(r.statuses_size(), 1);
      EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 3u);
      EXPECT_EQ(r.statuses(0).limit_remaining(), remaining);
    }
    Connection http(server.port());
    const auto metrics = http.request("GET", "/metrics");
    ASSERT_TRUE(metrics);
    EXPECT_THAT(metrics->body,
                HasSubstr(R"(floodgate_store_errors_total{store="redis",kind="timeout"} 0)"));
    EXPECT_THAT(
        metrics->body,
        ::testing::Not(HasSubstr(R"(floodgate_store_latency_seconds_count{store="redis"} 0)")));
    const std::string out = server.output();
    EXPECT_THAT(out, HasSubstr("store: redis at 127.0.0.1:" + std::to_string(redis.port())));
    EXPECT_THAT(out, HasSubstr("/srv/ratelimit/config"));
    EXPECT_THAT(out, HasSubstr("USE_STATSD has no effect"));
  }
  // REDIS_SOCKET_TYPE=unix, its default: REDIS_URL is the socket's path.
  {
    const std::string socket = dir.path() + "/redis.sock";
    RedisServer local({"--unixsocket", socket, "--unixsocketperm", "700"});
    std::vector<std::string> env = {"RUNTIME_ROOT=" + dir.path() + "/srv",
                                    "RUNTIME_SUBDIRECTORY=ratelimit", "REDIS_SOCKET_TYPE=unix",
                                    "REDIS_URL=" + socket};
    Server server({"--store-timeout-ms", "1000"}, env);
    ASSERT_GT(server.grpc_port(), 0) << server.output();
    const auto r =
        Client(server.grpc_port()).ok(request("edge", {{{"remote_address", "10.9.9.8"}}}));
    ASSERT_EQ(r.statuses_size(), 1);
    EXPECT_EQ(r.statuses(0).limit_remaining(), 2u);
    EXPECT_THAT(server.output(), HasSubstr("store: redis at unix:" + socket));
    Connection http(server.port());
    EXPECT_THAT(http.request("GET", "/ready")->body, HasSubstr(R"("state":"connected")"));
  }
  auto refused = [&](std::string variable, std::string value) {
    std::vector<std::string> env;
    for (const std::string& e : upstream) {
      if (!e.starts_with(variable + "=")) env.push_back(e);
    }
    env.push_back(variable + "=" + value);
    const auto [status, out] = run_floodgate({"serve", "--port", "0", "--grpc-port", "0"}, env);
    EXPECT_EQ(status, 2) << out;
    EXPECT_THAT(out, HasSubstr("floodgate: " + variable + ": ")) << out;
  };
  refused("BACKEND_TYPE", "memcache");
  refused("REDIS_SOCKET_TYPE", "udp");
  refused("CONFIG_TYPE", "GRPC_XDS_SOTW");
  refused("REDIS_TYPE", "ring");
}

TEST_F(RlsGrpc, TwoInstancesOnRedisAdmitExactlyTheLimit) {
  RedisServer redis;
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
  Server one({"--rls-config", config, "--backend", "redis", "--redis-url", url,
              "--store-timeout-ms", "1000"});
  Server two({"--rls-config", config, "--backend", "redis", "--redis-url", url,
              "--store-timeout-ms", "1000"});
  ASSERT_GT(one.grpc_port(), 0) << one.output();
  ASSERT_GT(two.grpc_port(), 0) << two.output();
  Client a(one.grpc_port());
  Client b(two.grpc_port());

  // The semantics hold on Redis too.
  for (std::uint32_t remaining : {2u, 1u, 0u}) {
    EXPECT_EQ(a.ok(request("edge", {{{"remote_address", "r"}}})).statuses(0).limit_remaining(),
              remaining);
  }
  EXPECT_EQ(b.ok(request("edge", {{{"remote_address", "r"}}})).overall_code(),
            pb::RateLimitResponse::OVER_LIMIT);

  const auto req = request("edge", {{{"shared", "redis"}}});
  std::atomic<int> total{0};
  std::thread t1([&] { total += a.many(req, 100); });
  std::thread t2([&] { total += b.many(req, 100); });
  t1.join();
  t2.join();
  EXPECT_EQ(total.load(), 50);
}

}  // namespace
}  // namespace floodgate::testing
