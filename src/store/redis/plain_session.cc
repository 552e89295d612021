#include "store/redis/plain_session.h"

#include <algorithm>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace floodgate::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
}  // namespace

asio::awaitable<std::string> connect_socket(Socket& socket, const std::string& host,
                                            std::uint16_t port, const bool& given_up) {
  boost::system::error_code ignored;
  if (port == 0) {
    const asio::local::stream_protocol::endpoint path(host);
    auto [ec] = co_await socket.async_connect(Socket::endpoint_type(path), kAwait);
    if (ec) co_return "cannot connect to unix:" + host + ": " + ec.message();
    co_return std::string();
  }
  tcp::resolver resolver(socket.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(
      host, std::to_string(port), asio::ip::resolver_base::numeric_service, kAwait);
  if (rec) co_return "cannot resolve " + host + ": " + rec.message();
  boost::system::error_code last = asio::error::host_not_found;
  for (const auto& entry : endpoints) {
    // The caller's guard fired meanwhile (a connect timeout): an attempt now would have none.
    if (given_up) co_return "no time left to connect to " + host + ":" + std::to_string(port);
    socket.close(ignored);  // a failed attempt leaves the socket open
    auto [ec] = co_await socket.async_connect(Socket::endpoint_type(entry.endpoint()), kAwait);
    if (!ec) {
      socket.set_option(tcp::no_delay(true), ignored);
      co_return std::string();
    }
    last = ec;
  }
  co_return "cannot connect to " + host + ":" + std::to_string(port) + ": " + last.message();
}

std::string command(std::initializer_list<std::string_view> args) {
  std::string out;
  append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
  return out;
}

std::chrono::milliseconds round_backoff(int round) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const std::int64_t d = std::min<std::int64_t>(2000, std::int64_t{100} << std::min(round, 5));
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(d / 2, d)(rng));
}

void PlainSession::close() {
  closed = true;
  boost::system::error_code ignored;
  socket.shutdown(Socket::shutdown_both, ignored);
  socket.close(ignored);
  guard.cancel();
  ping.cancel();
}

void PlainSession::arm(std::chrono::steady_clock::duration limit) {
  guard.expires_after(limit);
  guard.async_wait([this](const boost::system::error_code& ec) {
    // A handler already queued when arm() was called again finds the new, later expiry.
    if (!ec && guard.expiry() <= std::chrono::steady_clock::now()) close();
  });
}

asio::awaitable<bool> PlainSession::write(std::string bytes) {
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(bytes), kAwait);
  (void)n;
  co_return !ec;
}

asio::awaitable<Reply> PlainSession::read() {
  for (;;) {
    if (Reply r = reader.next()) co_return r;
    if (reader.failed()) co_return nullptr;
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buffer), kAwait);
    if (ec) co_return nullptr;
    if (!reader.feed({buffer.data(), n})) co_return nullptr;
  }
}

asio::awaitable<std::string> PlainSession::open(const std::string& host, std::uint16_t port,
                                                const std::string& username,
                                                const std::string& password,
                                                std::chrono::milliseconds timeout) {
  arm(timeout);
  if (std::string error = co_await connect_socket(socket, host, port, closed); !error.empty()) {
    co_return closed ? std::string("timed out connecting") : error;
  }
  if (!password.empty()) {
    std::string auth =
        username.empty() ? command({"AUTH", password}) : command({"AUTH", username, password});
    if (!co_await write(std::move(auth))) co_return std::string("AUTH failed");
    Reply r = co_await read();
    if (!r) co_return std::string("no answer to AUTH");
    if (r->type == REDIS_REPLY_ERROR) co_return "AUTH: " + std::string(text(*r));
  }
  co_return std::string("");
}

void PlainSession::keep_alive(std::shared_ptr<PlainSession> self, std::chrono::milliseconds every) {
  asio::co_spawn(
      self->socket.get_executor(),
      [self, every]() -> asio::awaitable<void> {
        while (!self->closed) {
          self->ping.expires_after(every);
          auto [ec] = co_await self->ping.async_wait(kAwait);
          if (ec || self->closed) break;
          std::string ping = command({"PING"});
          if (!co_await self->write(std::move(ping))) break;
        }
      },
      asio::detached);
}

}  // namespace floodgate::redis
