#include "server/grpc/rls_server.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "core/json_text.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace floodgate::grpc {

namespace pb = ::envoy::service::ratelimit::v3;
namespace pbd = ::envoy::extensions::common::ratelimit::v3;
namespace health = ::grpc::health::v1;

namespace {

constexpr std::string_view kServiceName = "envoy.service.ratelimit.v3.RateLimitService";

// to_domain(): the request's descriptors as views into `in`, which must outlive `out`.
void to_domain(const pb::RateLimitRequest& in, rls::Request& out) {
  out.domain = in.domain();
  out.hits_addend = in.hits_addend();
  out.descriptors.clear();
  out.descriptors.reserve(static_cast<std::size_t>(in.descriptors_size()));
  for (const pbd::RateLimitDescriptor& d : in.descriptors()) {
    rls::Descriptor& desc = out.descriptors.emplace_back();
    desc.entries.reserve(static_cast<std::size_t>(d.entries_size()));
    for (const auto& e : d.entries()) desc.entries.push_back({e.key(), e.value()});
    if (d.has_limit()) {
      const int unit = d.limit().unit();
      // envoy.type.v3.RateLimitUnit: SECOND..YEAR share the response's numbers; anything else
      // (UNKNOWN, or a number this build does not know) is refused by the service.
      desc.limit = rls::LimitOverride{
          d.limit().requests_per_unit(),
          unit >= 1 && unit <= 6 ? static_cast<rls::Unit>(unit) : rls::Unit::kUnknown};
    }
    if (d.has_hits_addend()) desc.hits_addend = d.hits_addend().value();
  }
}

void to_wire(const rls::Response& in, pb::RateLimitResponse& out) {
  out.set_overall_code(static_cast<pb::RateLimitResponse::Code>(in.overall_code));
  for (const rls::DescriptorStatus& st : in.statuses) {
    pb::RateLimitResponse::DescriptorStatus* s = out.add_statuses();
    s->set_code(static_cast<pb::RateLimitResponse::Code>(st.code));
    s->set_limit_remaining(st.limit_remaining);
    if (st.current_limit) {
      pb::RateLimitResponse::RateLimit* limit = s->mutable_current_limit();
      limit->set_requests_per_unit(st.current_limit->requests_per_unit);
      limit->set_unit(static_cast<pb::RateLimitResponse::RateLimit::Unit>(st.current_limit->unit));
      if (!st.current_limit->name.empty()) limit->set_name(st.current_limit->name);
      auto* reset = s->mutable_duration_until_reset();
      reset->set_seconds(st.duration_until_reset.count() / 1'000'000);
      reset->set_nanos(static_cast<std::int32_t>(st.duration_until_reset.count() % 1'000'000) *
                       1000);
    }
  }
  for (const rls::Header& h : in.headers) {
    auto* header = out.add_response_headers_to_add();
    header->set_key(std::string(h.name));
    header->set_value(h.value);
  }
  if (!in.dynamic_metadata.empty()) {
    // A JSON object the service built (valid by construction): the Struct's own JSON form.
    const auto parsed = google::protobuf::util::JsonStringToMessage(in.dynamic_metadata,
                                                                    out.mutable_dynamic_metadata());
    if (!parsed.ok()) out.clear_dynamic_metadata();
  }
}

::grpc::Status to_status(const rls::CallError& e) {
  const auto code = e.kind == rls::CallError::Kind::kInvalidArgument
                        ? ::grpc::StatusCode::INVALID_ARGUMENT
                        : ::grpc::StatusCode::UNAVAILABLE;
  return {code, e.message};
}

struct ServerState;

// Tag: what a completion queue hands back; every asynchronous operation's tag is one.
class Tag {
 public:
  virtual void proceed(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// One ShouldRateLimit over gRPC, driven by a completion queue: posted to wait for a call, then
// answered (inline for the memory store, from a store thread for Redis), then finished. Each
// polling thread owns its completion queue, so a call is accepted, decided and answered on one
// thread without hand-offs when the store answers inline.
class AsyncCall final : public rls::Call, public Tag {
 public:
  AsyncCall(ServerState& state, ::grpc::ServerCompletionQueue& cq);

  // proceed(): the completion queue delivered this call's tag with `ok`.
  void proceed(bool ok) override;
  void done() override;

 private:
  enum class Stage : std::uint8_t { kWaiting, kFinishing };

  // tag(): this call as the completion queue's tag (the Tag base, not the object's address).
  void* tag() { return static_cast<Tag*>(this); }

  ServerState& state_;
  ::grpc::ServerCompletionQueue& cq_;
  ::grpc::ServerContext context_;
  pb::RateLimitRequest in_;
  pb::RateLimitResponse out_;
  ::grpc::ServerAsyncResponseWriter<pb::RateLimitResponse> responder_{&context_};
  Stage stage_ = Stage::kWaiting;
};

struct ServerState {
  explicit ServerState(rls::Service& s) : service(s) {}
  rls::Service& service;
  pb::RateLimitService::AsyncService async;
  health::Health::AsyncService health;
  std::mutex watchers_mu;
  std::vector<class HealthWatch*> watchers;  // guarded by watchers_mu
  // Calls handed to the service and not yet finished: the queues stay up until none is left.
  std::atomic<int> deciding{0};
  std::atomic<bool> stopping{false};
};

AsyncCall::AsyncCall(ServerState& state, ::grpc::ServerCompletionQueue& cq)
    : state_(state), cq_(cq) {
  state_.async.RequestShouldRateLimit(&context_, &in_, &responder_, &cq_, &cq_, tag());
}

void AsyncCall::proceed(bool ok) {
  if (stage_ == Stage::kFinishing || !ok) {
    // Finished, or the server is shutting down. `context_` is still this call's: the next call
    // on this queue was posted with its own.
    delete this;
    return;
  }
  // Wait for the next call on this queue before deciding this one.
  if (!state_.stopping.load(std::memory_order_acquire)) new AsyncCall(state_, cq_);
  stage_ = Stage::kFinishing;
  to_domain(in_, request);
  state_.deciding.fetch_add(1, std::memory_order_relaxed);
  state_.service.should_rate_limit(*this);
}

void AsyncCall::done() {
  ServerState& state = state_;
  if (error) {
    responder_.FinishWithError(to_status(*error), tag());
  } else {
    to_wire(response, out_);
    responder_.Finish(out_, ::grpc::Status::OK, tag());
  }
  state.deciding.fetch_sub(1, std::memory_order_release);
}

// grpc.health.v1.Health on the same completion queues as the rate limit calls (gRPC's default
// health service would bring pollers of its own, whose hand-offs halve the throughput). The
// server is SERVING under "" and the rate limit service's name until shutdown() begins.
health::HealthCheckResponse::ServingStatus status_of(const ServerState& state,
                                                     const std::string& service) {
  if (!service.empty() && service != kServiceName)
    return health::HealthCheckResponse::SERVICE_UNKNOWN;
  return state.stopping.load(std::memory_order_acquire) ? health::HealthCheckResponse::NOT_SERVING
                                                        : health::HealthCheckResponse::SERVING;
}

class HealthCheck final : public Tag {
 public:
  HealthCheck(ServerState& state, ::grpc::ServerCompletionQueue& cq) : state_(state), cq_(cq) {
    state_.health.RequestCheck(&context_, &request_, &responder_, &cq_, &cq_, this);
  }

  void proceed(bool ok) override {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    if (!state_.stopping.load(std::memory_order_acquire)) new HealthCheck(state_, cq_);
    answered_ = true;
    const auto status = status_of(state_, request_.service());
    if (status == health::HealthCheckResponse::SERVICE_UNKNOWN) {
      responder_.FinishWithError({::grpc::StatusCode::NOT_FOUND, "unknown service"}, this);
      return;
    }
    health::HealthCheckResponse response;
    response.set_status(status);
    responder_.Finish(response, ::grpc::Status::OK, this);
  }

 private:
  ServerState& state_;
  ::grpc::ServerCompletionQueue& cq_;
  ::grpc::ServerContext context_;
  health::HealthCheckRequest request_;
  ::grpc::ServerAsyncResponseWriter<health::HealthCheckResponse> responder_{&context_};
  bool answered_ = false;
};

// Watch: the current status at once, then the stream stays open until shutdown, which sends
// NOT_SERVING and ends it. At most kMaxWatchers streams are kept; more are refused.
class HealthWatch final : public Tag {
 public:
  static constexpr std::size_t kMaxWatchers = 1024;

  HealthWatch(ServerState& state, ::grpc::ServerCompletionQueue& cq) : state_(state), cq_(cq) {
    state_.health.RequestWatch(&context_, &request_, &writer_, &cq_, &cq_, this);
  }

  void proceed(bool ok) override {
    switch (stage_) {
      case Stage::kWaiting: {
        if (!ok) {
          delete this;
          return;
        }
        if (!state_.stopping.load(std::memory_order_acquire)) new HealthWatch(state_, cq_);
        std::lock_guard lock(state_.watchers_mu);
        if (state_.watchers.size() >= kMaxWatchers || state_.stopping.load()) {
          stage_ = Stage::kFinishing;
          writer_.Finish({::grpc::StatusCode::RESOURCE_EXHAUSTED, "too many health watchers"},
                         this);
          return;
        }
        state_.watchers.push_back(this);
        stage_ = Stage::kWriting;
        write(status_of(state_, request_.service()));
        return;
      }
      case Stage::kWriting: {
        std::lock_guard lock(state_.watchers_mu);
        if (!ok) {  // the client went away
          forget();
          stage_ = Stage::kFinishing;
          writer_.Finish(::grpc::Status::CANCELLED, this);
          return;
        }
        stage_ = Stage::kOpen;
        if (closing_) close();
        return;
      }
      case Stage::kOpen:
        return;
      case Stage::kFinishing:
        delete this;
        return;
    }
  }

  // stop(): shutdown begins; the watcher says NOT_SERVING and ends. Called under watchers_mu.
  void stop() {
    closing_ = true;
    if (stage_ == Stage::kOpen) close();
  }

 private:
  enum class Stage : std::uint8_t { kWaiting, kWriting, kOpen, kFinishing };

  void write(health::HealthCheckResponse::ServingStatus status) {
    response_.set_status(status);
    writer_.Write(response_, this);
  }
  // close(): under watchers_mu, with no operation outstanding.
  void close() {
    forget();
    stage_ = Stage::kFinishing;
    response_.set_status(health::HealthCheckResponse::NOT_SERVING);
    writer_.WriteAndFinish(response_, ::grpc::WriteOptions(), ::grpc::Status::OK, this);
  }
  void forget() { std::erase(state_.watchers, this); }

  ServerState& state_;
  ::grpc::ServerCompletionQueue& cq_;
  ::grpc::ServerContext context_;
  health::HealthCheckRequest request_;
  health::HealthCheckResponse response_;
  ::grpc::ServerAsyncWriter<health::HealthCheckResponse> writer_{&context_};
  Stage stage_ = Stage::kWaiting;
  bool closing_ = false;
};

namespace tls = ::grpc::experimental;

// Accepts a client certificate (already verified against the CA by gRPC) only when one of its DNS
// or IP SANs names the wanted client, as envoyproxy/ratelimit's GRPC_CLIENT_TLS_SAN does.
class SanVerifier final : public tls::ExternalCertificateVerifier {
 public:
  explicit SanVerifier(std::string wanted) : wanted_(std::move(wanted)) {}

  bool Verify(tls::TlsCustomVerificationCheckRequest* request,
              std::function<void(::grpc::Status)> /*callback*/,
              ::grpc::Status* sync_status) override {
    for (const auto& names : {request->dns_names(), request->ip_names()}) {
      for (const ::grpc::string_ref& name : names) {
        if (san_matches(std::string_view(name.data(), name.size()), wanted_)) {
          *sync_status = ::grpc::Status::OK;
          return true;
        }
      }
    }
    *sync_status = ::grpc::Status(::grpc::StatusCode::UNAUTHENTICATED,
                                  "the client certificate does not name " + wanted_);
    return true;  // decided synchronously
  }
  void Cancel(tls::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  std::string wanted_;
};

std::shared_ptr<::grpc::ServerCredentials> credentials(const std::optional<RlsTls>& tls_options) {
  if (!tls_options) return ::grpc::InsecureServerCredentials();
  const RlsTls& t = *tls_options;
  // An empty root path watches no CA (gRPC's two-path constructor passes "" too).
  tls::TlsServerCredentialsOptions options(std::make_shared<tls::FileWatcherCertificateProvider>(
      t.key_file, t.cert_file, t.client_ca_file, kTlsRefreshSeconds));
  options.watch_identity_key_cert_pairs();
  if (t.client_ca_file.empty()) {
    options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!t.client_san.empty()) {
      options.set_certificate_verifier(
          tls::ExternalCertificateVerifier::Create<SanVerifier>(t.client_san));
    }
  }
  return ::grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

bool san_matches(std::string_view name, std::string_view wanted) {
  auto same = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  if (name.starts_with("*.")) {
    const auto dot = wanted.find('.');
    return dot != std::string_view::npos && dot > 0 && same(name.substr(1), wanted.substr(dot));
  }
  return same(name, wanted);
}

struct RlsServer::Impl {
  explicit Impl(rls::Service& service) : state(service) {}
  ServerState state;
  std::unique_ptr<::grpc::Server> server;
  std::vector<std::unique_ptr<::grpc::ServerCompletionQueue>> queues;
  std::vector<std::thread> threads;
  int port = 0;
  std::once_flag stopped;
};

RlsServer::RlsServer(rls::Service& service, const RlsServerOptions& options)
    : impl_(std::make_unique<Impl>(service)) {
  ::grpc::ServerBuilder builder;
  const std::string address = !options.unix_socket.empty() ? "unix:" + options.unix_socket
                              : options.host.find(':') != std::string::npos
                                  ? fmt::format("[{}]:{}", options.host, options.port)
                                  : fmt::format("{}:{}", options.host, options.port);
  builder.AddListeningPort(address, credentials(options.tls), &impl_->port);
  builder.RegisterService(&impl_->state.async);
  builder.RegisterService(&impl_->state.health);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  // gRPC sets SO_REUSEPORT by default: a second process could then share the port unnoticed.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  const int threads = std::max(1, options.threads);
  for (int i = 0; i < threads; ++i) impl_->queues.push_back(builder.AddCompletionQueue());
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || (options.unix_socket.empty() && impl_->port == 0)) {
    for (auto& cq : impl_->queues) cq->Shutdown();
    for (auto& cq : impl_->queues) {
      void* tag = nullptr;
      bool ok = false;
      while (cq->Next(&tag, &ok)) {
      }
    }
    throw std::runtime_error(fmt::format("cannot listen on {}", address));
  }
  for (auto& cq : impl_->queues) {
    // A few calls waiting per queue, so a burst of new streams is matched at once.
    for (int i = 0; i < 8; ++i) new AsyncCall(impl_->state, *cq);
    new HealthCheck(impl_->state, *cq);
    new HealthWatch(impl_->state, *cq);
    impl_->threads.emplace_back([queue = cq.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) static_cast<Tag*>(tag)->proceed(ok);
    });
  }
}

RlsServer::~RlsServer() { shutdown(); }

std::uint16_t RlsServer::bound_port() const { return static_cast<std::uint16_t>(impl_->port); }

void RlsServer::shutdown(std::chrono::milliseconds grace) {
  std::call_once(impl_->stopped, [&] {
    impl_->state.stopping.store(true, std::memory_order_release);
    {
      std::lock_guard lock(impl_->state.watchers_mu);
      for (HealthWatch* w : std::vector<HealthWatch*>(impl_->state.watchers)) w->stop();
    }
    impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
    // Calls with the store finish (the store's timeout bounds this) before the queues close:
    // their Finish() needs an open queue.
    while (impl_->state.deciding.load(std::memory_order_acquire) > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& cq : impl_->queues) cq->Shutdown();
    for (auto& t : impl_->threads) t.join();
    impl_->server->Wait();
  });
}

// ---- POST /json
// -----------------------------------------------------------------------------------

namespace {

http::Response json_error(int status, std::string_view code, std::string_view message) {
  http::Response r;
  r.status = status;
  r.body = "{\"error\":{\"code\":";
  core::append_json_string(r.body, code);
  r.body += ",\"message\":";
  core::append_json_string(r.body, message);
  r.body += "}}";
  return r;
}

class JsonCall final : public rls::Call {
 public:
  pb::RateLimitRequest wire_request;
  std::function<void(http::Response)> reply;

  void done() override {
    http::Response r;
    if (error) {
      r = json_error(400, "invalid_request", error->message);
    } else {
      pb::RateLimitResponse out;
      to_wire(response, out);
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = false;  // camelCase, as protojson writes it
      if (!google::protobuf::util::MessageToJsonString(out, &r.body, options).ok()) {
        r = json_error(500, "internal", "the response could not be encoded");
      } else {
        r.status = response.overall_code == rls::Code::kOverLimit ? 429 : 200;
      }
    }
    auto answer = std::move(reply);
    delete this;
    answer(std::move(r));
  }
};

}  // namespace

void RlsJson::serve(const http::Request& request, std::function<void(http::Response)> reply) {
  auto call = std::make_unique<JsonCall>();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(request.body.data(), request.body.size()), &call->wire_request,
      options);
  if (!parsed.ok()) {
    reply(
        json_error(400, "invalid_json",
                   fmt::format("the body is not a RateLimitRequest in the proto3 JSON mapping: {}",
                               std::string(parsed.message()))));
    return;
  }
  call->reply = std::move(reply);
  to_domain(call->wire_request, call->request);
  service_.should_rate_limit(*call.release());
}

}  // namespace floodgate::grpc
