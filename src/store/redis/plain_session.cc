#include "store/redis/plain_session.h"

#include <algorithm>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace floodgate::redis {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);
}  // namespace

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
  socket.shutdown(tcp::socket::shutdown_both, ignored);
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
  tcp::resolver resolver(socket.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(
      host, std::to_string(port), asio::ip::resolver_base::numeric_service, kAwait);
  if (rec) co_return "cannot resolve: " + rec.message();
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, kAwait);
  (void)endpoint;
  if (cec)
    co_return closed ? std::string("timed out connecting") : "cannot connect: " + cec.message();
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
