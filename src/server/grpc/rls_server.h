// File: server/grpc/rls_server.h
//
// The Envoy rate limit service over gRPC (envoy.service.ratelimit.v3.RateLimitService/
// ShouldRateLimit, on gRPC's completion-queue API with one queue per polling thread) with the
// standard gRPC health service, and the same call as proto3 JSON for POST /json on the HTTP port.
// Both only translate between the wire messages and rls::Service (rls/service.h); no decision is
// made here.
//
// gRPC and protobuf headers stay inside rls_server.cc: this header is cheap to include.
//
// Example:
//   floodgate::grpc::RlsServer server(service, {.host = "0.0.0.0", .port = 8081});
//   ... server.shutdown();
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rls/service.h"
#include "server/http/api.h"

namespace floodgate::grpc {

// RlsTls: TLS on the gRPC port, as envoyproxy/ratelimit's GRPC_SERVER_USE_TLS and friends. The
// files are watched: a rotated certificate is served within kTlsRefreshSeconds, no restart.
struct RlsTls {
  std::string cert_file;       // PEM certificate chain
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // set: clients must present a certificate this CA signed (mTLS)
  std::string client_san;      // set: ... whose DNS or IP SAN is this name (a "*." SAN matches
                               // one label)
};
inline constexpr unsigned kTlsRefreshSeconds = 10;

struct RlsServerOptions {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8081;  // 0: any free port (see bound_port())
  std::string unix_socket;    // set: listen on this Unix socket path instead of host:port
  // Larger requests are refused with RESOURCE_EXHAUSTED before they are parsed.
  int max_message_bytes = 1 << 20;
  // Threads polling the server's completion queues (one queue each).
  int threads = 2;
  std::optional<RlsTls> tls;  // absent: plaintext (h2c), as Envoy's default cluster speaks
};

// san_matches(): whether a certificate SAN (`name`, possibly "*.example.com") names `wanted`:
// DNS names compare without case, a wildcard stands for exactly one leftmost label.
bool san_matches(std::string_view name, std::string_view wanted);

class RlsServer {
 public:
  // Listens and serves on gRPC's own threads; throws std::runtime_error when it cannot listen.
  // `service` is borrowed and must outlive the server.
  RlsServer(rls::Service& service, const RlsServerOptions& options);
  ~RlsServer();
  RlsServer(const RlsServer&) = delete;
  RlsServer& operator=(const RlsServer&) = delete;

  std::uint16_t bound_port() const;
  // shutdown(): health turns NOT_SERVING, new calls are refused, calls in flight get until
  // `grace` to finish. Idempotent.
  void shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// RlsJson: POST /json, envoyproxy/ratelimit's JSON endpoint: a RateLimitRequest in the proto3 JSON
// mapping in, the RateLimitResponse out; 200 when OK, 429 when OVER_LIMIT, 400 with an error
// naming the problem for a request that cannot be read or answered.
class RlsJson final : public http::Route {
 public:
  explicit RlsJson(rls::Service& service) : service_(service) {}
  void serve(const http::Request& request, std::function<void(http::Response)> reply) override;

 private:
  rls::Service& service_;
};

}  // namespace floodgate::grpc
