// api_server: an application that rate-limits its own API with floodgate as a C++ library — the
// example of docs/PRODUCT: /api/public 10 per minute per client address, /api/premium 100 per
// minute per API key (and only with one), POST /api/data 5 writes per minute per API key (or
// address), each answer with the RateLimit headers, 429 + Retry-After when limited.
//
//   build/release/examples/api_server --port 9000                 # limits in this process
//   build/release/examples/api_server --redis-url redis://127.0.0.1:6379   # shared by instances
//
// A plain Boost.Beast server, one thread per connection: the point is the Middleware calls.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "floodgate/middleware.h"
#include "floodgate/redis_store.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::vector<floodgate::RouteLimit> routes() {
  using floodgate::Policy;
  return {
      // Writes first: POST /api/data has its own, tighter limit.
      {.name = "data_write",
       .method = "POST",
       .path_prefix = "/api/data",
       .policy = Policy::token_bucket(5, 5.0 / 60).value(),  // 5 at once, then one per 12 s
       .key_by = floodgate::KeyBy::kApiKey},
      {.name = "public",
       .path_prefix = "/api/public",
       .policy = Policy::sliding_window_log(10, 1min).value(),  // exactly 10 in any minute
       .key_by = floodgate::KeyBy::kClientIp},
      {.name = "premium",
       .path_prefix = "/api/premium",
       .policy = Policy::sliding_window_counter(100, 1min).value(),
       .key_by = floodgate::KeyBy::kApiKey},
  };
}

http::response<http::string_body> handle(const floodgate::Middleware& limits,
                                         const http::request<http::string_body>& req,
                                         const std::string& client_ip) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.keep_alive(req.keep_alive());
  res.set(http::field::content_type, "application/json");
  const std::string_view target(req.target().data(), req.target().size());
  const std::string_view path = target.substr(0, target.find('?'));
  const std::string_view method(req.method_string().data(), req.method_string().size());
  auto reply = [&](http::status status, std::string body) {
    res.result(status);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  };
  auto header = [&](std::string_view name) -> std::string_view {
    auto it = req.find(beast::string_view(name.data(), name.size()));
    return it == req.end() ? std::string_view()
                           : std::string_view(it->value().data(), it->value().size());
  };

  if (path == "/health") return reply(http::status::ok, R"({"status":"ok"})");
  const bool known = path == "/api/public" || path == "/api/premium" || path == "/api/data";
  if (!known) return reply(http::status::not_found, R"({"error":{"code":"not_found"}})");
  if (path == "/api/premium" && header("X-API-Key").empty()) {
    return reply(http::status::unauthorized,
                 R"({"error":{"code":"api_key_required","message":"send X-API-Key"}})");
  }
  if (path == "/api/data" && method != "POST" && method != "GET") {
    res.set(http::field::allow, "GET, POST");
    return reply(http::status::method_not_allowed, R"({"error":{"code":"method_not_allowed"}})");
  }

  // The one call that matters: may this caller do this now?
  const floodgate::Verdict v =
      limits.check({.method = method, .path = path, .client_ip = client_ip, .headers = header});
  for (const auto& [name, value] : v.headers) res.set(name, value);
  if (v.limited) return reply(http::status::too_many_requests, v.body);

  if (path == "/api/public") return reply(http::status::ok, R"({"data":"public"})");
  if (path == "/api/premium") return reply(http::status::ok, R"({"data":"premium"})");
  if (method == "POST") return reply(http::status::created, R"({"stored":true})");
  return reply(http::status::ok, R"({"data":[]})");
}

void serve(tcp::socket socket, const floodgate::Middleware& limits) {
  beast::error_code ec;
  const std::string client_ip = socket.remote_endpoint(ec).address().to_string();
  beast::flat_buffer buffer;
  for (;;) {
    http::request<http::string_body> req;
    http::read(socket, buffer, req, ec);
    if (ec) break;
    auto res = handle(limits, req, client_ip);
    http::write(socket, res, ec);
    if (ec || !res.keep_alive()) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"api_server: an API rate-limited by floodgate's C++ Middleware"};
  std::string host = "127.0.0.1";
  int port = 9000;
  std::string redis_url;
  app.add_option("--host", host, "Address to listen on");
  app.add_option("--port", port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--redis-url", redis_url, "Share the limits through Redis (redis://...)");
  CLI11_PARSE(app, argc, argv);

  floodgate::SystemClock clock;
  floodgate::MemoryStore memory(clock);
  std::unique_ptr<floodgate::RedisStore> redis;
  if (!redis_url.empty()) {
    auto options = floodgate::parse_redis_url(redis_url);
    if (!options) {
      std::fprintf(stderr, "api_server: %s\n", options.error().message.c_str());
      return 2;
    }
    redis = std::make_unique<floodgate::RedisStore>(*options);
  }
  floodgate::Limiter limiter(redis ? static_cast<floodgate::Store&>(*redis) : memory, &memory);
  const floodgate::Middleware limits(limiter, routes(), floodgate::FailureMode::kLocal);

  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address(host), static_cast<std::uint16_t>(port)});
  std::printf("listening on %s:%u\n", host.c_str(), acceptor.local_endpoint().port());
  std::fflush(stdout);
  for (;;) {
    tcp::socket socket(io);
    acceptor.accept(socket);
    std::thread(serve, std::move(socket), std::cref(limits)).detach();
  }
}
