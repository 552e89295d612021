// rls_load: a closed-loop load generator for the Envoy rate limit service (gRPC ShouldRateLimit),
// the way Envoy's filter calls it: many calls in flight on one HTTP/2 connection (or spread over
// several), one descriptor each. Prints calls/s and latency percentiles; runs for a bounded time
// against 127.0.0.1 only.
//
//   rls_load --port 8081 --concurrency 64 --connections 1 --seconds 10 --domain bench
//            --key user --values 10000
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"

namespace {

namespace pb = ::envoy::service::ratelimit::v3;
using Clock = std::chrono::steady_clock;

struct Options {
  int port = 8081;
  int concurrency = 64;
  int connections = 1;
  double seconds = 10;
  double warmup = 1;
  std::string domain = "bench";
  std::string key = "user";
  int values = 10000;
};

struct Shared {
  Clock::time_point measure_from;
  Clock::time_point stop_at;
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
};

// One slot: one call in flight at any time, the next sent from the previous one's completion.
class Slot {
 public:
  Slot(pb::RateLimitService::Stub& stub, Shared& shared, const Options& o, int id)
      : stub_(stub), shared_(shared), options_(o), next_value_(static_cast<std::uint64_t>(id)) {
    request_.set_domain(o.domain);
    entry_ = request_.add_descriptors()->add_entries();
    entry_->set_key(o.key);
    latencies_.reserve(1 << 16);
  }

  void start() { send(); }

  std::vector<std::int64_t> latencies_;  // microseconds, measured calls only
  std::uint64_t ok = 0;
  std::uint64_t over_limit = 0;
  std::uint64_t errors = 0;

 private:
  void send() {
    entry_->set_value(std::to_string(next_value_ % static_cast<std::uint64_t>(options_.values)));
    next_value_ += 7919;  // a prime stride over the value space
    context_ = std::make_unique<::grpc::ClientContext>();
    context_->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    response_.Clear();
    sent_ = Clock::now();
    stub_.async()->ShouldRateLimit(context_.get(), &request_, &response_,
                                   [this](::grpc::Status s) { done(s); });
  }

  void done(const ::grpc::Status& s) {
    const auto now = Clock::now();
    if (sent_ >= shared_.measure_from && now <= shared_.stop_at) {
      latencies_.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(now - sent_).count());
      if (!s.ok()) {
        ++errors;
      } else if (response_.overall_code() == pb::RateLimitResponse::OVER_LIMIT) {
        ++over_limit;
      } else {
        ++ok;
      }
    }
    if (now < shared_.stop_at) {
      send();
      return;
    }
    std::lock_guard lock(shared_.mu);
    if (--shared_.running == 0) shared_.cv.notify_all();
  }

  pb::RateLimitService::Stub& stub_;
  Shared& shared_;
  const Options& options_;
  std::uint64_t next_value_;
  pb::RateLimitRequest request_;
  pb::RateLimitResponse response_;
  ::envoy::extensions::common::ratelimit::v3::RateLimitDescriptor::Entry* entry_;
  std::unique_ptr<::grpc::ClientContext> context_;
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
  app.add_option("--seconds", o.seconds, "Measured time")->check(CLI::Range(0.5, 300.0));
  app.add_option("--warmup", o.warmup, "Unmeasured time first")->check(CLI::Range(0.0, 60.0));
  app.add_option("--domain", o.domain, "RateLimitRequest.domain");
  app.add_option("--key", o.key, "The descriptor's one entry key");
  app.add_option("--values", o.values, "Distinct entry values cycled through")
      ->check(CLI::Range(1, 100'000'000));
  CLI11_PARSE(app, argc, argv);

  std::vector<std::unique_ptr<pb::RateLimitService::Stub>> stubs;
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
  }

  Shared shared;
  const auto start = Clock::now();
  shared.measure_from =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup));
  shared.stop_at = shared.measure_from + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(o.seconds));
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < o.concurrency; ++i) {
    slots.push_back(
        std::make_unique<Slot>(*stubs[static_cast<std::size_t>(i % o.connections)], shared, o, i));
  }
  shared.running = o.concurrency;
  for (auto& s : slots) s->start();
  {
    std::unique_lock lock(shared.mu);
    shared.cv.wait_for(lock, std::chrono::duration<double>(o.warmup + o.seconds + 10),
                       [&] { return shared.running == 0; });
    if (shared.running != 0) {
      std::fprintf(stderr, "rls_load: %d calls did not finish\n", shared.running);
      return 1;
    }
  }

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
