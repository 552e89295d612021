#include "server/grpc/rls_server.h"

#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "core/json_text.h"
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"

namespace floodgate::grpc {

namespace pb = ::envoy::service::ratelimit::v3;
namespace pbd = ::envoy::extensions::common::ratelimit::v3;

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
}

::grpc::Status to_status(const rls::CallError& e) {
  const auto code = e.kind == rls::CallError::Kind::kInvalidArgument
                        ? ::grpc::StatusCode::INVALID_ARGUMENT
                        : ::grpc::StatusCode::UNAVAILABLE;
  return {code, e.message};
}

// One ShouldRateLimit over gRPC: lives from the call's arrival to Finish().
class GrpcCall final : public rls::Call {
 public:
  GrpcCall(::grpc::ServerUnaryReactor* reactor, const pb::RateLimitRequest* in,
           pb::RateLimitResponse* out)
      : reactor_(reactor), out_(out) {
    to_domain(*in, request);
  }

  void done() override {
    ::grpc::ServerUnaryReactor* reactor = reactor_;
    ::grpc::Status status = ::grpc::Status::OK;
    if (error) {
      status = to_status(*error);
    } else {
      to_wire(response, *out_);
    }
    delete this;
    reactor->Finish(status);
  }

 private:
  ::grpc::ServerUnaryReactor* reactor_;
  pb::RateLimitResponse* out_;
};

class RateLimitService final : public pb::RateLimitService::CallbackService {
 public:
  explicit RateLimitService(rls::Service& service) : service_(service) {}

  ::grpc::ServerUnaryReactor* ShouldRateLimit(::grpc::CallbackServerContext* context,
                                              const pb::RateLimitRequest* request,
                                              pb::RateLimitResponse* response) override {
    ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    service_.should_rate_limit(*new GrpcCall(reactor, request, response));
    return reactor;
  }

 private:
  rls::Service& service_;
};

}  // namespace

struct RlsServer::Impl {
  explicit Impl(rls::Service& service) : rate_limit(service) {}
  RateLimitService rate_limit;
  std::unique_ptr<::grpc::Server> server;
  int port = 0;
  std::once_flag stopped;
};

RlsServer::RlsServer(rls::Service& service, const RlsServerOptions& options)
    : impl_(std::make_unique<Impl>(service)) {
  ::grpc::EnableDefaultHealthCheckService(true);
  ::grpc::ServerBuilder builder;
  const std::string address = options.host.find(':') != std::string::npos
                                  ? fmt::format("[{}]:{}", options.host, options.port)
                                  : fmt::format("{}:{}", options.host, options.port);
  builder.AddListeningPort(address, ::grpc::InsecureServerCredentials(), &impl_->port);
  builder.RegisterService(&impl_->rate_limit);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->port == 0) {
    throw std::runtime_error(fmt::format("cannot listen on {}", address));
  }
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus(std::string(kServiceName), true);
  }
}

RlsServer::~RlsServer() { shutdown(); }

std::uint16_t RlsServer::bound_port() const { return static_cast<std::uint16_t>(impl_->port); }

void RlsServer::shutdown(std::chrono::milliseconds grace) {
  std::call_once(impl_->stopped, [&] {
    if (auto* health = impl_->server->GetHealthCheckService()) health->Shutdown();
    impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
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
