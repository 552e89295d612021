// rls_load: a closed-loop load generator for the Envoy rate limit service (gRPC ShouldRateLimit),
// the way Envoy's filter calls it: many calls in flight on one HTTP/2 connection (or spread over
// several), one descriptor each. Prints calls/s and latency percentiles; runs for a bounded time
// against 127.0.0.1 only.
//
//   rls_load --port 8081 --concurrency 64 --connections 1 --seconds 10 --domain bench
//            --key user --values 10000
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace {

namespace pb = ::envoy::service::ratelimit::v3;
using Clock = std::chrono::steady_clock;

struct Options {
  int port = 8081;
  int concurrency = 64;
  int connections = 1;
  int threads = 1;
  std::string method = "rls";
  double seconds = 10;
  double warmup = 1;
  std::string domain = "bench";
  std::string key = "user";
  int values = 10000;
};

struct Shared {
  Clock::time_point measure_from;
  Clock::time_point stop_at;
};

// One slot: one call in flight at any time, the next sent when the previous one completes on the
// slot's completion queue (polled by one client thread: no hand-offs inside the client).
class Slot {
 public:
  Slot(pb::RateLimitService::Stub& stub, ::grpc::health::v1::Health::Stub* health,
       ::grpc::CompletionQueue& cq, Shared& shared, const Options& o, int id)
      : stub_(stub),
        cq_(cq),
        shared_(shared),
        options_(o),
        next_value_(static_cast<std::uint64_t>(id)),
        health_(health) {
    request_.set_domain(o.domain);
    entry_ = request_.add_descriptors()->add_entries();
    entry_->set_key(o.key);
    latencies_.reserve(1 << 16);
  }

  void send() {
    entry_->set_value(std::to_string(next_value_ % static_cast<std::uint64_t>(options_.values)));
    next_value_ += 7919;  // a prime stride over the value space
    context_ = std::make_unique<::grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    response_.Clear();
    sent_ = Clock::now();
    if (health_) {
      health_reader_ = health_->AsyncCheck(context_.get(), health_request_, &cq_);
      health_reader_->Finish(&health_response_, &status_, this);
      return;
    }
    reader_ = stub_.AsyncShouldRateLimit(context_.get(), request_, &cq_);
    reader_->Finish(&response_, &status_, this);
  }

  // done(): the call completed; false once the slot has stopped.
  bool done() {
    const auto now = Clock::now();
    if (sent_ >= shared_.measure_from && now <= shared_.stop_at) {
      latencies_.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(now - sent_).count());
      if (!status_.ok()) {
        ++errors;
      } else if (response_.overall_code() == pb::RateLimitResponse::OVER_LIMIT) {
        ++over_limit;
      } else {
        ++ok;
      }
    }
    if (now < shared_.stop_at) {
      send();
      return true;
    }
    return false;
  }

  std::vector<std::int64_t> latencies_;  // microseconds, measured calls only
  std::uint64_t ok = 0;
  std::uint64_t over_limit = 0;
  std::uint64_t errors = 0;

 private:
  pb::RateLimitService::Stub& stub_;
  ::grpc::CompletionQueue& cq_;
  Shared& shared_;
  const Options& options_;
  std::uint64_t next_value_;
  pb::RateLimitRequest request_;
  pb::RateLimitResponse response_;
  ::grpc::Status status_;
  ::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor::Entry* entry_;
  std::unique_ptr<::grpc::ClientContext> context_;
  std::unique_ptr<::grpc::ClientAsyncResponseReader<pb::RateLimitResponse>> reader_;
  // --method health: grpc.health.v1.Health/Check on the same server, the gRPC layer's ceiling.
  ::grpc::health::v1::Health::Stub* health_ = nullptr;
  ::grpc::health::v1::HealthCheckRequest health_request_;
  ::grpc::health::v1::HealthCheckResponse health_response_;
  std::unique_ptr<::grpc::ClientAsyncResponseReader<::grpc::health::v1::HealthCheckResponse>>
      health_reader_;
  Clock::time_point sent_;
};

std::int64_t percentile(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const auto at = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[at];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"rls_load: load for the Envoy rate limit service (gRPC) on 127.0.0.1"};
  app.add_option("--port", o.port, "gRPC port on 127.0.0.1")->check(CLI::Range(1, 65535));
  app.add_option("--concurrency", o.concurrency, "Calls in flight in all")
      ->check(CLI::Range(1, 10000));
  app.add_option("--connections", o.connections, "HTTP/2 connections the calls share")
      ->check(CLI::Range(1, 256));
  app.add_option("--threads", o.threads, "Client threads, each with its own completion queue")
      ->check(CLI::Range(1, 64));
  app.add_option("--method", o.method,
                 "rls: ShouldRateLimit; health: grpc.health.v1.Health/Check (the gRPC ceiling)")
      ->check(CLI::IsMember({"rls", "health"}));
  app.add_option("--seconds", o.seconds, "Measured time")->check(CLI::Range(0.5, 300.0));
  app.add_option("--warmup", o.warmup, "Unmeasured time first")->check(CLI::Range(0.0, 60.0));
  app.add_option("--domain", o.domain, "RateLimitRequest.domain");
  app.add_option("--key", o.key, "The descriptor's one entry key");
  app.add_option("--values", o.values, "Distinct entry values cycled through")
      ->check(CLI::Range(1, 100'000'000));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::unique_ptr<pb::RateLimitService::Stub>> stubs;
  std::vector<std::unique_ptr<::grpc::health::v1::Health::Stub>> health_stubs;
  for (int c = 0; c < o.connections; ++c) {
    ::grpc::ChannelArguments args;
    // Channels with equal arguments share one connection; a distinct argument gives each its own.
    args.SetInt("floodgate.bench.connection", c);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto channel = ::grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(o.port),
                                               ::grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
      std::fprintf(stderr, "rls_load: cannot connect to 127.0.0.1:%d\n", o.port);
      return 1;
    }
    stubs.push_back(pb::RateLimitService::NewStub(channel));
    health_stubs.push_back(::grpc::health::v1::Health::NewStub(channel));
  }

  Shared shared;
  const auto start = Clock::now();
  shared.measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  shared.stop_at = shared.measure_from + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o.seconds));
  std::vector<std::unique_ptr<::grpc::CompletionQueue>> queues;
  for (int t = 0; t < o.threads; ++t) queues.push_back(std::make_unique<::grpc::CompletionQueue>());
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < o.concurrency; ++i) {
    const auto c = static_cast<std::size_t>(i % o.connections);
    slots.push_back(
        std::make_unique<Slot>(*stubs[c], o.method == "health" ? health_stubs[c].get() : nullptr,
                               *queues[static_cast<std::size_t>(i % o.threads)], shared, o, i));
  }
  for (auto& s : slots) s->send();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      auto& cq = *queues[static_cast<std::size_t>(t)];
      int live = 0;
      for (int i = t; i < o.concurrency; i += o.threads) ++live;
      void* tag = nullptr;
      bool ok = false;
      while (live > 0 && cq.Next(&tag, &ok)) {
        if (!static_cast<Slot*>(tag)->done()) --live;
      }
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<std::int64_t> all;
  std::uint64_t ok = 0;
  std::uint64_t over = 0;
  std::uint64_t errors = 0;
  for (const auto& s : slots) {
    all.insert(all.end(), s->latencies_.begin(), s->latencies_.end());
    ok += s->ok;
    over += s->over_limit;
    errors += s->errors;
  }
  std::sort(all.begin(), all.end());
  const double rate = static_cast<double>(all.size()) / o.seconds;
  std::printf(
      "{\"calls_per_s\":%.0f,\"calls\":%zu,\"ok\":%llu,\"over_limit\":%llu,\"errors\":%llu,"
      "\"concurrency\":%d,\"connections\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
      "\"p999_ms\":%.3f}\n",
      rate, all.size(), static_cast<unsigned long long>(ok), static_cast<unsigned long long>(over),
      static_cast<unsigned long long>(errors), o.concurrency, o.connections,
      static_cast<double>(percentile(all, 0.5)) / 1000.0,
      static_cast<double>(percentile(all, 0.9)) / 1000.0,
      static_cast<double>(percentile(all, 0.99)) / 1000.0,
      static_cast<double>(percentile(all, 0.999)) / 1000.0);
  return errors == 0 ? 0 : 1;
}
