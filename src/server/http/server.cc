// The one translation unit that includes Beast and Asio's HTTP machinery: keep it that way, they
// are heavy to compile.
#include "server/http/server.h"

#include <stdexcept>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include <fmt/compile.h>
#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace floodgate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

class BeastHeaders final : public HeaderLookup {
 public:
  explicit BeastHeaders(const bhttp::request<bhttp::string_body>& req) : req_(req) {}
  std::string_view get(std::string_view name) const override {
    auto it = req_.find(beast::string_view(name.data(), name.size()));
    if (it == req_.end()) return {};
    const auto v = it->value();
    return {v.data(), v.size()};
  }

 private:
  const bhttp::request<bhttp::string_body>& req_;
};

struct Session;

// Worker: one thread, its own io_context and acceptor, and the sessions it serves. Everything in
// a Worker is touched only from its thread.
struct Worker {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::set<Session*> sessions;
  std::thread thread;
  // Closes the sessions whose deadline passed (see Session::deadline).
  asio::steady_timer watchdog{io};
  bool draining = false;
};

// Reply: the Api's answer to the session's current request. respond() may run inline (inside
// Api::handle) or on a store thread; the session then waits on `wake`, which respond() cancels
// from the worker's own thread (posted), so the coroutine resumes where it belongs.
struct Reply final : Exchange {
  static constexpr int kStarted = 0;
  static constexpr int kDone = 1;
  static constexpr int kWaiting = 2;

  asio::io_context& io;
  asio::steady_timer wake;
  Response response;
  std::atomic<int> state{kStarted};

  explicit Reply(asio::io_context& ctx) : io(ctx), wake(ctx) {}

  void respond(Response r) override {
    response = std::move(r);
    if (state.exchange(kDone, std::memory_order_acq_rel) == kWaiting) {
      asio::post(io, [this] { wake.cancel(); });
    }
  }

  // answer(): the response to the request just handed to Api::handle(), once there is one.
  asio::awaitable<void> answer() {
    if (state.exchange(kWaiting, std::memory_order_acq_rel) == kDone) co_return;
    wake.expires_at(asio::steady_timer::time_point::max());
    co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
  }
};

struct Session {
  tcp::socket socket;
  // When the read or write in progress must have finished: a worker's watchdog closes the socket
  // of a session past it. One timer per worker, not one armed per operation: per-request timer
  // and Beast stream bookkeeping was measurable on the Redis-through-HTTP path.
  using Deadline = std::chrono::steady_clock::time_point;
  Deadline deadline = Deadline::max();

  void expires_after(std::chrono::steady_clock::duration d) {
    deadline = std::chrono::steady_clock::now() + d;
  }
  void expires_never() { deadline = Deadline::max(); }
  beast::flat_buffer buffer;
  std::string out;       // the response being written
  bool waiting = false;  // suspended in a read of the next request
  Reply reply;

  Session(tcp::socket s, asio::io_context& io) : socket(std::move(s)), reply(io) {}
};

}  // namespace

struct HttpServer::Impl {
  ServerOptions options;
  Handler& api;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> stopping{false};
  std::uint16_t port = 0;

  Impl(ServerOptions o, Handler& a) : options(std::move(o)), api(a) {}

  void listen(Worker& w, const tcp::endpoint& endpoint) {
    w.acceptor.open(endpoint.protocol());
    w.acceptor.set_option(asio::socket_base::reuse_address(true));
    w.acceptor.set_option(ReusePort(true));
    w.acceptor.bind(endpoint);
    w.acceptor.listen(asio::socket_base::max_listen_connections);
  }

  asio::awaitable<void> accept_loop(Worker& w) {
    for (;;) {
      auto [ec, socket] = co_await w.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (stopping.load() || ec == asio::error::operation_aborted) co_return;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      asio::co_spawn(w.io, serve(w, std::move(socket)), asio::detached);
    }
  }

  // watch(): every tick, closes the sockets of sessions past their deadline; their pending read
  // or write then ends with an error and the session ends. The tick is an eighth of the shortest
  // timeout (10 ms .. 250 ms), so a timeout is kept to within that.
  std::chrono::milliseconds watchdog_tick() const {
    const auto shortest = std::min(options.request_timeout, options.idle_timeout);
    return std::clamp(shortest / 8, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  }
  void watch(Worker& w) {
    w.watchdog.expires_after(watchdog_tick());
    w.watchdog.async_wait([this, &w](const beast::error_code& ec) {
      if (ec || w.draining) return;
      const auto now = std::chrono::steady_clock::now();
      for (Session* s : w.sessions) {
        if (s->deadline <= now) {
          beast::error_code ignored;
          s->socket.close(ignored);
        }
      }
      watch(w);
    });
  }

  // drain(): once the worker has no session left, cancels the deadline so run() can return.
  void drain(Worker& w, std::shared_ptr<asio::steady_timer> deadline) {
    if (w.sessions.empty()) {
      if (options.on_worker_stop) options.on_worker_stop(w.io);
      w.draining = true;
      w.watchdog.cancel();
      deadline->cancel();
      return;
    }
    auto poll = std::make_shared<asio::steady_timer>(w.io, std::chrono::milliseconds(10));
    poll->async_wait([this, &w, poll, deadline](const beast::error_code&) { drain(w, deadline); });
  }

  static std::string peer_of(const tcp::socket& socket) {
    beast::error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    return ec ? std::string() : endpoint.address().to_string();
  }

  // head_lines(): the status line and the response's own header fields, over `out`.
  static void head_lines(std::string& out, const Response& response, unsigned version) {
    out.clear();
    auto it = std::back_inserter(out);
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
    fmt::format_to(it, FMT_COMPILE("HTTP/1.{} {} {}\r\nServer: floodgate\r\n"),
                   version == 10 ? 0 : 1, response.status,
                   std::string_view(reason.data(), reason.size()));
    if (!response.content_type.empty()) {
      fmt::format_to(it, FMT_COMPILE("Content-Type: {}\r\n"), response.content_type);
    }
    for (const auto& [name, value] : response.headers) {
      fmt::format_to(it, FMT_COMPILE("{}: {}\r\n"), name, value);
    }
  }

  // write(): serializes the response straight into the session's buffer (reused, so steady-state
  // keep-alive traffic allocates nothing here) and sends it in one write.
  asio::awaitable<void> write(Session& s, const Response& response, unsigned version,
                              bool keep_alive, bool head = false) {
    std::string& out = s.out;
    head_lines(out, response, version);
    auto it = std::back_inserter(out);
    if (response.status != 204) {
      fmt::format_to(it, FMT_COMPILE("Content-Length: {}\r\n"), response.body.size());
    }
    if (!keep_alive) {
      out += "Connection: close\r\n";
    } else if (version == 10) {
      out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    if (!head) out += response.body;
    s.expires_after(options.request_timeout);
    co_await asio::async_write(s.socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable));
  }

  // stream(): a streamed response (Response::next): the head without a length, then a part
  // every stream_every until the source ends, the client leaves or the server stops.
  asio::awaitable<void> stream(Session& s, const Response& response, unsigned version) {
    std::string& out = s.out;
    head_lines(out, response, version);
    out += "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    out += response.body;
    asio::steady_timer pause(s.socket.get_executor());
    for (;;) {
      s.expires_after(options.request_timeout);
      auto [ec, n] = co_await asio::async_write(s.socket, asio::buffer(out),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec || stopping.load()) break;
      s.expires_never();
      pause.expires_after(response.stream_every);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopping.load()) break;
      std::optional<std::string> part = response.next();
      if (!part) break;
      out = std::move(*part);
    }
  }

  std::optional<ApiError> check_header_size(const bhttp::request<bhttp::string_body>& req) const {
    std::size_t bytes = req.method_string().size() + req.target().size() + 12;
    std::size_t fields = 0;
    for (const auto& field : req) {
      bytes += field.name_string().size() + field.value().size() + 4;
      ++fields;
    }
    if (bytes > options.max_header_bytes) {
      return ApiError{
          431, "headers_too_large",
          "the headers are larger than " + std::to_string(options.max_header_bytes) + " bytes", ""};
    }
    if (fields > options.max_header_fields) {
      return ApiError{431, "headers_too_large",
                      "more than " + std::to_string(options.max_header_fields) + " header fields",
                      ""};
    }
    return std::nullopt;
  }

  // linger(): after answering a request we refuse midway (413, 431, 400), stop sending and read
  // what the client is still sending, briefly, before closing: closing with unread data would
  // reset the connection and the client could lose our answer (nginx's lingering close).
  static asio::awaitable<void> linger(Session& s) {
    beast::error_code ignored;
    s.socket.shutdown(tcp::socket::shutdown_send, ignored);
    s.expires_after(std::chrono::seconds(1));
    char scratch[4096];
    for (std::size_t total = 0; total < (1u << 20);) {
      auto [ec, n] = co_await s.socket.async_read_some(asio::buffer(scratch),
                                                       asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      total += n;
    }
  }

  asio::awaitable<void> serve(Worker& w, tcp::socket socket) {
    const std::string peer = peer_of(socket);
    Session s(std::move(socket), w.io);
    w.sessions.insert(&s);
    for (;;) {
      bhttp::request_parser<bhttp::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser.body_limit(options.max_body_bytes);
      // Idle (up to idle_timeout) until the first byte of a request; from then on the whole
      // request must arrive within request_timeout, which is what stops slowloris.
      if (s.buffer.size() == 0) {
        s.expires_after(options.idle_timeout);
        s.waiting = true;
        auto [idle_ec, got] = co_await s.socket.async_read_some(
            s.buffer.prepare(4096), asio::as_tuple(asio::use_awaitable));
        s.waiting = false;
        if (idle_ec) break;
        s.buffer.commit(got);
      }
      s.expires_after(options.request_timeout);
      auto [ec, n] = co_await bhttp::async_read(s.socket, s.buffer, parser,
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) {
        std::optional<ApiError> error;
        if (ec == bhttp::error::body_limit) {
          error = ApiError{
              413, "body_too_large",
              "the body is larger than " + std::to_string(options.max_body_bytes) + " bytes", ""};
        } else if (ec == bhttp::error::header_limit) {
          error = ApiError{
              431, "headers_too_large",
              "the headers are larger than " + std::to_string(options.max_header_bytes) + " bytes",
              ""};
        } else if (ec.category() ==
                       bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
                   ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
          error = ApiError{400, "bad_request", "malformed HTTP request: " + ec.message(), ""};
        }
        if (error) {
          api.record_status(error->status);
          co_await write(s, Api::error_response(*error), 11, false);
          co_await linger(s);
        }
        break;  // end of stream, timeout, reset, or an error answered above
      }
      auto& req = parser.get();
      // Beast's header_limit counts bytes per read, so a header that arrives in pieces can pass
      // it; measure the whole header here too, and cap how many fields it may have.
      if (auto too_large = check_header_size(req)) {
        api.record_status(too_large->status);
        co_await write(s, Api::error_response(*too_large), req.version(), false);
        co_await linger(s);
        break;
      }
      const BeastHeaders headers(req);
      const auto method = req.method_string();
      const auto target = req.target();
      const Request request{std::string_view(method.data(), method.size()),
                            std::string_view(target.data(), target.size()), req.body(), peer,
                            headers};
      s.reply.state.store(Reply::kStarted, std::memory_order_relaxed);
      try {
        api.handle(request, s.reply);
      } catch (const std::exception& e) {
        // A bug, not bad input (that is a 4xx from the Api): answer, keep serving.
        s.reply.respond(Api::error_response({500, "internal", e.what(), ""}));
        api.record_status(500);
      }
      s.expires_never();  // the store's own timeout bounds the wait for the answer
      co_await s.reply.answer();
      if (s.reply.response.next && req.method() != bhttp::verb::head) {
        co_await stream(s, s.reply.response, req.version());
        break;
      }
      const bool keep_alive = req.keep_alive() && !stopping.load();
      co_await write(s, s.reply.response, req.version(), keep_alive,
                     req.method() == bhttp::verb::head);
      if (!keep_alive) break;
    }
    beast::error_code ignored;
    s.socket.shutdown(tcp::socket::shutdown_send, ignored);
    w.sessions.erase(&s);
  }
};

HttpServer::HttpServer(ServerOptions options, Handler& api)
    : impl_(std::make_unique<Impl>(std::move(options), api)) {
  const int threads = std::max(1, impl_->options.threads);
  const auto address = asio::ip::make_address(impl_->options.host);
  std::uint16_t port = impl_->options.port;
  if (port != 0) {
    // The workers share the port through SO_REUSEPORT, which would also let a second process of
    // the same user join it silently and take half the connections. A plain bind first tells
    // whether anything else holds the port.
    asio::io_context probe_io;
    tcp::acceptor probe(probe_io);
    const tcp::endpoint endpoint(address, port);
    probe.open(endpoint.protocol());
    probe.set_option(asio::socket_base::reuse_address(true));  // TIME_WAIT leftovers are fine
    boost::system::error_code ec;
    probe.bind(endpoint, ec);
    if (ec) throw std::runtime_error(ec.message());
    probe.close();
  }
  for (int i = 0; i < threads; ++i) {
    auto w = std::make_unique<Worker>();
    // The first acceptor picks the port when asked for port 0; the others join it.
    impl_->listen(*w, tcp::endpoint(address, port));
    port = w->acceptor.local_endpoint().port();
    impl_->workers.push_back(std::move(w));
  }
  impl_->port = port;
}

HttpServer::~HttpServer() = default;

std::uint16_t HttpServer::bound_port() const { return impl_->port; }

void HttpServer::run() {
  for (auto& w : impl_->workers) {
    asio::co_spawn(w->io, impl_->accept_loop(*w), asio::detached);
    impl_->watch(*w);
  }
  auto serve = [this](Worker& w) {
    if (impl_->options.on_worker_start) impl_->options.on_worker_start(w.io);
    w.io.run();
  };
  for (std::size_t i = 1; i < impl_->workers.size(); ++i) {
    Worker& w = *impl_->workers[i];
    w.thread = std::thread([&w, serve] { serve(w); });
  }
  serve(*impl_->workers[0]);
  for (std::size_t i = 1; i < impl_->workers.size(); ++i) impl_->workers[i]->thread.join();
}

void HttpServer::stop() {
  if (impl_->stopping.exchange(true)) return;
  for (auto& worker : impl_->workers) {
    Worker& w = *worker;
    asio::post(w.io, [this, &w] {
      beast::error_code ignored;
      w.acceptor.close(ignored);
      // Idle keep-alive connections close now; one with a request on its way finishes it.
      for (Session* s : w.sessions) {
        if (s->waiting && s->buffer.size() == 0) {
          s->socket.close(ignored);
        }
      }
      // Whatever is still open when the drain time is up is cut off.
      auto deadline = std::make_shared<asio::steady_timer>(w.io, impl_->options.drain_timeout);
      deadline->async_wait([&w](const beast::error_code& ec) {
        if (!ec) w.io.stop();
      });
      impl_->drain(w, std::move(deadline));
    });
  }
}

}  // namespace floodgate::http
