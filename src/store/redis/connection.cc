// One of the two translation units that compile Asio's socket and SSL machinery for Redis (the
// other is redis_store.cc); keep it that way, they are heavy.
#include "store/redis/connection.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <random>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace floodgate::redis {
namespace {

namespace asio = boost::asio;
constexpr auto kAwait = asio::as_tuple(asio::use_awaitable);

// Exponential backoff with jitter: the n-th retry waits a random time in [d/2, d], where d doubles
// from backoff_min up to backoff_max.
std::chrono::milliseconds backoff(const RedisOptions& options, int attempt) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const auto cap = std::max<std::int64_t>(1, options.backoff_max.count());
  std::int64_t d = std::max<std::int64_t>(1, options.backoff_min.count());
  for (int i = 0; i < attempt && d < cap; ++i) d *= 2;
  d = std::min(d, cap);
  std::uniform_int_distribution<std::int64_t> jitter(d / 2, d);
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace

Connection::Connection(asio::io_context& io, const RedisOptions& options, const Endpoint& endpoint,
                       asio::ssl::context& ssl, const std::vector<std::string>& handshake,
                       StateListener on_state)
    : io_(io),
      options_(options),
      endpoint_(endpoint),
      ssl_(ssl),
      tls_(options.tls),
      handshake_(handshake),
      on_state_(std::move(on_state)),
      deadline_timer_(io),
      backoff_timer_(io),
      read_buffer_(64 * 1024) {}

Connection::~Connection() = default;

void Connection::start() { asio::co_spawn(io_, run(), asio::detached); }

void Connection::stop() {
  stopping_ = true;
  backoff_timer_.cancel();
  deadline_timer_.cancel();
  close_stream();
}

void Connection::drop() {
  asio::post(io_, [this] {
    if (stopping_) return;
    skip_backoff_ = true;
    backoff_timer_.cancel();
    close_stream();
  });
}

std::size_t Connection::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_.size();
}

bool Connection::submit(std::string_view command, Call* call) {
  return submit(command, call, {}, nullptr);
}

bool Connection::submit(std::string_view first, Call* first_call, std::string_view second,
                        Call* second_call) {
  std::lock_guard lock(mu_);
  if (!ready_.load(std::memory_order_relaxed) || in_flight_.size() >= options_.max_in_flight) {
    return false;
  }
  out_.append(first);
  in_flight_.push_back(first_call);
  if (second_call != nullptr) {
    out_.append(second);
    in_flight_.push_back(second_call);
  }
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    asio::post(io_, [this] { flush(); });
  }
  return true;
}

void Connection::close_stream() {
  if (!stream_) return;
  boost::system::error_code ignored;
  stream_->next_layer().shutdown(Socket::shutdown_both, ignored);
  stream_->next_layer().close(ignored);
}

asio::awaitable<void> Connection::run() {
  int attempt = 0;
  while (!stopping_) {
    std::string error = co_await establish();
    if (error.empty() && !stopping_) {
      attempt = 0;
      ready_.store(true, std::memory_order_release);
      on_state_(true, {});
      error = co_await read_loop();
      ready_.store(false, std::memory_order_release);
    }
    fail_all(StoreStatus::kUnavailable);
    close_stream();
    if (stopping_) break;
    on_state_(false, error);
    if (std::exchange(skip_backoff_, false)) {
      attempt = 0;
      continue;
    }
    backoff_timer_.expires_after(backoff(options_, attempt++));
    co_await backoff_timer_.async_wait(kAwait);
  }
}

asio::awaitable<std::string> Connection::establish() {
  ++generation_;
  stream_ = std::make_unique<Stream>(io_, ssl_);  // plain TCP uses only its next_layer()
  reader_ = std::make_unique<RespReader>();
  {
    std::lock_guard lock(mu_);
    out_.clear();
    flush_scheduled_ = false;
  }
  writing_.clear();

  const auto address = endpoint_.get();
  const std::string host = address.first;
  const std::uint16_t port = address.second;
  if (host.empty()) co_return std::string(kMasterNotKnown);
  // One guard for the whole setup: when it fires, the socket closes and the pending step fails.
  // Its handler may already be queued when the setup ends (cancel() is then too late): it shares
  // `guard_state` rather than pointing into this frame, and leaves a setup that has ended alone.
  struct GuardState {
    bool ended = false;
    bool timed_out = false;
  };
  auto guard_state = std::make_shared<GuardState>();
  asio::steady_timer guard(io_, options_.connect_timeout);
  guard.async_wait([this, guard_state](const boost::system::error_code& ec) {
    if (ec || guard_state->ended) return;
    guard_state->timed_out = true;
    close_stream();
  });
  auto end_guard = [&] {
    guard_state->ended = true;
    guard.cancel();
  };
  auto fail = [&](std::string what) -> std::string {
    end_guard();
    return guard_state->timed_out
               ? "timed out connecting to " + host + ":" + std::to_string(port) + " (" + what + ")"
               : what;
  };

  if (std::string error =
          co_await connect_socket(stream_->next_layer(), host, port, guard_state->timed_out);
      !error.empty()) {
    co_return fail(std::move(error));
  }

  if (tls_) {
    // SNI (SSL_set_tlsext_host_name, spelled out: the macro casts C-style).
    SSL_ctrl(stream_->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(host.c_str()));
    if (options_.tls_verify) {
      stream_->set_verify_callback(asio::ssl::host_name_verification(host));
    }
    auto [hec] = co_await stream_->async_handshake(asio::ssl::stream_base::client, kAwait);
    if (hec) co_return fail("TLS handshake with " + host + " failed: " + hec.message());
  }

  // Two rounds, each one write and then one reply per command, in order: AUTH and SELECT, then
  // the handshake commands. Redis (since 7.0.13) drops an unauthenticated connection sending a
  // bulk string above 16 KB, so the scripts wait for AUTH's answer (and are not sent after a
  // refusal, which is then what is reported).
  struct Round {
    std::string commands;
    std::vector<std::string> names;
  };
  Round login;
  Round scripts;
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      const std::string_view args[] = {"AUTH", options_.password};
      append_command(login.commands, args);
    } else {
      const std::string_view args[] = {"AUTH", options_.username, options_.password};
      append_command(login.commands, args);
    }
    login.names.emplace_back("AUTH");
  }
  if (options_.db != 0) {
    const std::string db = std::to_string(options_.db);
    const std::string_view args[] = {"SELECT", db};
    append_command(login.commands, args);
    login.names.emplace_back("SELECT " + db);
  }
  for (const std::string& command : handshake_) {
    scripts.commands += command;
    scripts.names.emplace_back("SCRIPT LOAD");
  }
  if (login.names.empty() && scripts.names.empty()) {
    const std::string_view args[] = {"PING"};
    append_command(login.commands, args);
    login.names.emplace_back("PING");
  }

  std::string first_error;
  for (Round* round : {&login, &scripts}) {
    if (round->names.empty()) continue;
    auto [wec, written] =
        tls_ ? co_await asio::async_write(*stream_, asio::buffer(round->commands), kAwait)
             : co_await asio::async_write(stream_->next_layer(), asio::buffer(round->commands),
                                          kAwait);
    if (wec) co_return fail("cannot write to Redis: " + wec.message());
    for (std::size_t got = 0; got < round->names.size();) {
      Reply reply = reader_->next();
      if (reader_->failed()) co_return fail("Redis sent invalid RESP: " + reader_->error());
      if (!reply) {
        auto [rec2, n] = tls_
                             ? co_await stream_->async_read_some(asio::buffer(read_buffer_), kAwait)
                             : co_await stream_->next_layer().async_read_some(
                                   asio::buffer(read_buffer_), kAwait);
        if (rec2) co_return fail("connection closed during setup: " + rec2.message());
        reader_->feed({read_buffer_.data(), n});
        continue;
      }
      if (reply->type == REDIS_REPLY_ERROR && first_error.empty()) {
        first_error = round->names[got] + " failed: " + std::string(text(*reply));
      }
      ++got;
    }
    if (!first_error.empty()) break;
  }
  end_guard();
  co_return first_error;
}

asio::awaitable<std::string> Connection::read_loop() {
  for (;;) {
    auto [ec, n] =
        tls_ ? co_await stream_->async_read_some(asio::buffer(read_buffer_), kAwait)
             : co_await stream_->next_layer().async_read_some(asio::buffer(read_buffer_), kAwait);
    if (ec) {
      co_return ec == asio::error::eof ? std::string("Redis closed the connection")
                                       : "connection lost: " + ec.message();
    }
    if (!reader_->feed({read_buffer_.data(), n})) {
      co_return "Redis sent invalid RESP: " + reader_->error();
    }
    while (Reply reply = reader_->next()) dispatch(std::move(reply));
    if (reader_->failed()) co_return "Redis sent invalid RESP: " + reader_->error();
  }
}

void Connection::dispatch(Reply reply) {
  Call* call = nullptr;
  {
    std::lock_guard lock(mu_);
    if (in_flight_.empty()) return;  // a reply nobody asked for; cannot happen with RESP2
    call = in_flight_.front();
    in_flight_.pop_front();
    if (scanned_ > 0) --scanned_;
  }
  if (call) call->on_reply(std::move(reply));
}

void Connection::flush() {
  if (!writing_.empty()) return;  // a write is on its way; its completion flushes again
  {
    std::lock_guard lock(mu_);
    if (out_.empty() || !stream_) {
      flush_scheduled_ = false;
      return;
    }
    writing_.swap(out_);
  }
  arm_deadlines();
  auto on_written = [this, generation = generation_](const boost::system::error_code& ec,
                                                     std::size_t) {
    if (generation != generation_) return;  // a write on a connection since replaced
    writing_.clear();
    if (ec) {
      close_stream();  // the read loop sees it and reconnects
      std::lock_guard lock(mu_);
      flush_scheduled_ = false;
      return;
    }
    flush();
  };
  if (tls_) {
    asio::async_write(*stream_, asio::buffer(writing_), on_written);
  } else {
    asio::async_write(stream_->next_layer(), asio::buffer(writing_), on_written);
  }
}

void Connection::arm_deadlines() {
  if (timer_armed_ || stopping_) return;
  SteadyTime next;
  {
    std::lock_guard lock(mu_);
    if (scanned_ >= in_flight_.size()) return;
    next = in_flight_[scanned_]->deadline;
  }
  timer_armed_ = true;
  deadline_timer_.expires_at(next);
  deadline_timer_.async_wait([this](const boost::system::error_code& ec) {
    timer_armed_ = false;
    if (ec || stopping_) return;
    expire_due();
    arm_deadlines();
  });
}

void Connection::expire_due() {
  std::vector<Call*> expired;
  {
    std::lock_guard lock(mu_);
    const SteadyTime now = std::chrono::steady_clock::now();
    while (scanned_ < in_flight_.size()) {
      Call*& call = in_flight_[scanned_];
      if (call != nullptr) {
        if (call->deadline > now) break;
        expired.push_back(call);
        call = nullptr;
      }
      ++scanned_;
    }
  }
  for (Call* call : expired) call->on_failure(StoreStatus::kTimeout);
}

void Connection::fail_all(StoreStatus status) {
  std::deque<Call*> failed;
  {
    std::lock_guard lock(mu_);
    failed.swap(in_flight_);
    scanned_ = 0;
    out_.clear();
  }
  for (Call* call : failed) {
    if (call) call->on_failure(status);
  }
}

}  // namespace floodgate::redis
