#include "store/redis/cluster.h"

#include <charconv>

#include <fmt/format.h>

namespace floodgate::redis {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto kRefreshGap = 100ms;      // at most one CLUSTER SLOTS per this, on demand
constexpr auto kRefreshFailing = 100ms;  // ... and while a master is down or slots are uncovered

bool split_address(std::string_view address, std::string& host, std::uint16_t& port) {
  // "host:port"; Redis writes IPv6 addresses without brackets ("::1:7000"): the port follows the
  // last colon.
  const auto colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view digits = address.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size() || value == 0 || value > 65535) {
    return false;
  }
  host.assign(address.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  port = static_cast<std::uint16_t>(value);
  return true;
}

bool is_auth_error(const std::string& error) {
  return error.rfind("AUTH", 0) == 0 || error.find("NOAUTH") != std::string::npos ||
         error.find("WRONGPASS") != std::string::npos;
}

}  // namespace

bool parse_redirect(std::string_view error, Redirect& out) {
  if (error.starts_with("MOVED ")) {
    out.ask = false;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    out.ask = true;
    error.remove_prefix(4);
  } else {
    return false;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return false;
  unsigned slot = 0;
  const auto [end, ec] = std::from_chars(error.data(), error.data() + space, slot);
  if (ec != std::errc() || end != error.data() + space || slot >= kClusterSlots) return false;
  out.slot = static_cast<std::uint16_t>(slot);
  out.address = error.substr(space + 1);
  return !out.address.empty();
}

Connection* ClusterRouter::Node::pick() {
  const std::size_t count = connections.size();
  for (std::size_t k = 0; k < count; ++k) {
    Connection& c = *connections[(next + k) % count];
    if (c.ready()) return &c;
  }
  return nullptr;
}

void ClusterRouter::rotate() {
  for (const auto& node : nodes_) ++node->next;
}

// SlotsCall: CLUSTER SLOTS on one node's connection; the answer becomes the slot map.
class ClusterRouter::SlotsCall final : public Call {
 public:
  SlotsCall(ClusterRouter& router, const Node& node) : router_(router), node_(node) {
    deadline = std::chrono::steady_clock::now() + router.options_.connect_timeout;
  }
  void on_reply(Reply reply) override {
    router_.refresh_in_flight_ = false;
    if (reply->type == REDIS_REPLY_ARRAY) {
      router_.apply(*reply, node_);
    } else {
      router_.log_("warn", fmt::format("redis cluster: CLUSTER SLOTS on {} failed: {}", node_.name,
                                       text(*reply)));
      router_.refresh_soon();
    }
    delete this;
  }
  void on_failure(StoreStatus) override {
    router_.refresh_in_flight_ = false;
    router_.refresh_soon();
    delete this;
  }

 private:
  ClusterRouter& router_;
  const Node& node_;
};

ClusterRouter::ClusterRouter(asio::io_context& io, const RedisOptions& options,
                             asio::ssl::context& ssl, const std::vector<std::string>& handshake,
                             Log log, ReadyListener on_ready)
    : io_(io),
      options_(options),
      ssl_(ssl),
      handshake_(handshake),
      log_(std::move(log)),
      on_ready_(std::move(on_ready)),
      refresh_timer_(io),
      periodic_timer_(io) {}

ClusterRouter::~ClusterRouter() = default;

void ClusterRouter::start() {
  for (const auto& [host, port] : options_.cluster_seeds) add_node(host, port);
  schedule_periodic();
}

void ClusterRouter::stop() {
  stopping_ = true;
  refresh_timer_.cancel();
  periodic_timer_.cancel();
  std::lock_guard lock(mu_);
  for (auto& node : nodes_)
    for (auto& c : node->connections) c->stop();
}

ClusterRouter::Node* ClusterRouter::add_node(std::string host, std::uint16_t port) {
  auto node = std::make_unique<Node>(std::move(host), port, options_);
  Node* raw = node.get();
  const int pool = std::max(1, options_.pool_size);
  for (int i = 0; i < pool; ++i) {
    raw->connections.push_back(std::make_unique<Connection>(
        io_, options_, raw->endpoint, ssl_, handshake_,
        [this, raw](bool ready, const std::string& error) { on_state(*raw, ready, error); }));
  }
  {
    std::lock_guard lock(mu_);
    nodes_.push_back(std::move(node));
  }
  if (!stopping_) {
    for (auto& c : raw->connections) c->start();
  }
  return raw;
}

ClusterRouter::Node* ClusterRouter::node_at(std::string_view address) {
  for (const auto& node : nodes_) {
    if (node->name == address) return node.get();
  }
  std::string host;
  std::uint16_t port = 0;
  if (!split_address(address, host, port)) return nullptr;
  // The same node may be named differently ("[::1]:7000" vs "::1:7000").
  const std::string name = host + ":" + std::to_string(port);
  for (const auto& node : nodes_) {
    if (node->name == name) return node.get();
  }
  return add_node(std::move(host), port);
}

ClusterRouter::Node* ClusterRouter::moved(std::uint16_t slot, std::string_view address) {
  Node* node = node_at(address);
  if (node != nullptr && slots_[slot] != node) {
    Node* before = slots_[slot];
    slots_[slot] = node;
    std::lock_guard lock(mu_);
    if (before) --before->slots;
    ++node->slots;
  }
  refresh_soon();
  return node;
}

void ClusterRouter::on_state(Node& node, bool ready, const std::string& error) {
  bool log_it = false;
  bool recovered = false;
  bool master = false;
  {
    std::lock_guard lock(mu_);
    master = node.slots > 0;
    if (ready) {
      recovered = !node.error.empty();
      log_it = recovered || !node.ever_ready;
      node.error.clear();
      node.ever_ready = true;
    } else {
      log_it = error != node.error;
      node.error = error;
    }
  }
  if (ready) {
    node.breaker.record_success();
    if (log_it) {
      log_("info", fmt::format("redis cluster: connected to {}{}", node.name,
                               recovered ? " (recovered)" : ""));
    }
    on_ready_();
    if (!map_known_) refresh_soon();
    return;
  }
  if (log_it && !stopping_) {
    log_("warn",
         fmt::format("redis cluster: {}{}: {}", node.name, master ? " (master)" : "", error));
  }
  // A master that cannot be reached may be failing over: its replica's promotion shows in the map.
  if (master || !map_known_) refresh_soon();
}

void ClusterRouter::refresh_soon() {
  if (stopping_ || refresh_scheduled_ || refresh_in_flight_) return;
  refresh_scheduled_ = true;
  const auto now = std::chrono::steady_clock::now();
  const auto at = std::max(now, last_refresh_ + kRefreshGap);
  refresh_timer_.expires_at(at);
  refresh_timer_.async_wait([this](const boost::system::error_code& ec) {
    refresh_scheduled_ = false;
    if (ec || stopping_) return;
    refresh_now();
  });
}

void ClusterRouter::refresh_now() {
  if (refresh_in_flight_ || stopping_) return;
  // Ask a node that answers: a current master first (their view is authoritative), else any.
  const std::size_t count = nodes_.size();
  Node* chosen = nullptr;
  Connection* connection = nullptr;
  for (int pass = 0; pass < 2 && connection == nullptr; ++pass) {
    for (std::size_t k = 0; k < count; ++k) {
      Node& node = *nodes_[(next_ask_ + k) % count];
      bool master = false;
      {
        std::lock_guard lock(mu_);
        master = node.slots > 0;
      }
      if (pass == 0 && !master) continue;
      if (Connection* c = node.pick()) {
        chosen = &node;
        connection = c;
        next_ask_ = (next_ask_ + k + 1) % count;
        break;
      }
    }
  }
  if (connection == nullptr) return;  // nobody answers; a connection's recovery asks again
  last_refresh_ = std::chrono::steady_clock::now();
  auto* call = new SlotsCall(*this, *chosen);
  std::string command;
  const std::string_view args[] = {"CLUSTER", "SLOTS"};
  append_command(command, args);
  refresh_in_flight_ = true;
  if (!connection->submit(command, call)) {
    refresh_in_flight_ = false;
    delete call;
  }
}

void ClusterRouter::apply(const redisReply& reply, const Node& asked) {
  std::array<Node*, kClusterSlots> table{};
  for (std::size_t i = 0; i < reply.elements; ++i) {
    const redisReply& range = *reply.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3) continue;
    const redisReply& first = *range.element[0];
    const redisReply& last = *range.element[1];
    const redisReply& master = *range.element[2];
    if (first.type != REDIS_REPLY_INTEGER || last.type != REDIS_REPLY_INTEGER ||
        master.type != REDIS_REPLY_ARRAY || master.elements < 2 ||
        master.element[1]->type != REDIS_REPLY_INTEGER) {
      continue;
    }
    if (first.integer < 0 || last.integer < first.integer || last.integer >= kClusterSlots) {
      continue;
    }
    std::string host(text(*master.element[0]));
    const long long port = master.element[1]->integer;
    if (host == "?" || port <= 0 || port > 65535) continue;  // the node has no known endpoint
    // An empty host: the node does not know its own address; it is the one we asked.
    if (host.empty()) host = asked.endpoint.get().first;
    Node* node = node_at(host + ":" + std::to_string(port));
    if (node == nullptr) continue;
    for (long long s = first.integer; s <= last.integer; ++s) {
      table[static_cast<std::size_t>(s)] = node;
    }
  }

  // Count, compare with the map in force, and swap.
  int covered = 0;
  int changed = 0;
  for (std::size_t s = 0; s < kClusterSlots; ++s) {
    covered += table[s] != nullptr ? 1 : 0;
    changed += table[s] != slots_[s] ? 1 : 0;
  }
  if (covered == 0) {
    log_("warn", fmt::format("redis cluster: {} answered CLUSTER SLOTS with no slot served; is it "
                             "a cluster node?",
                             asked.name));
    return;
  }
  slots_ = table;
  map_loads_.fetch_add(1, std::memory_order_relaxed);
  const bool first_map = !map_known_;
  std::string summary;
  {
    std::lock_guard lock(mu_);
    map_known_ = true;
    for (auto& node : nodes_) node->slots = 0;
    for (Node* node : slots_) {
      if (node) ++node->slots;
    }
    for (const auto& node : nodes_) {
      if (node->slots == 0) continue;
      if (!summary.empty()) summary += ", ";
      summary += fmt::format("{} ({} slots)", node->name, node->slots);
    }
  }
  if (first_map || changed > 0) {
    log_(covered == kClusterSlots ? "info" : "warn",
         fmt::format("redis cluster: slot map {}: {}{}", first_map ? "loaded" : "changed", summary,
                     covered == kClusterSlots
                         ? std::string()
                         : fmt::format("; {} slots have no master", kClusterSlots - covered)));
  }
}

void ClusterRouter::schedule_periodic() {
  if (stopping_) return;
  const Health h = health();
  // While everything answers: RedisOptions::cluster_refresh (5 s by default).
  periodic_timer_.expires_after(h.ready ? options_.cluster_refresh
                                        : std::chrono::milliseconds(kRefreshFailing));
  periodic_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    refresh_now();
    schedule_periodic();
  });
}

ClusterRouter::Health ClusterRouter::health() const {
  Health h;
  std::lock_guard lock(mu_);
  std::vector<std::string> down;
  bool any_ready = false;
  bool auth_failed = false;
  bool circuit_open = false;
  std::string first_error;
  for (const auto& node : nodes_) {
    bool ready = false;
    for (const auto& c : node->connections) ready = ready || c->ready();
    any_ready = any_ready || ready;
    auth_failed = auth_failed || is_auth_error(node->error);
    if (first_error.empty() && !node->error.empty()) {
      first_error = node->name + ": " + node->error;
    }
    if (node->slots == 0) continue;
    ++h.masters;
    h.slots_covered += node->slots;
    if (!ready) {
      down.push_back(fmt::format("{} ({} slots): {}", node->name, node->slots,
                                 node->error.empty() ? "connecting" : node->error));
    } else if (node->breaker.state() == CircuitBreaker::State::kOpen) {
      circuit_open = true;
      down.push_back(fmt::format("{} ({} slots): circuit open", node->name, node->slots));
    }
  }
  if (!map_known_) {
    h.state = auth_failed           ? "auth_failed"
              : any_ready           ? "connecting"
              : first_error.empty() ? "connecting"
                                    : "disconnected";
    h.error = first_error.empty() ? std::string("asking the seeds for the slot map") : first_error;
    return h;
  }
  if (down.empty() && h.slots_covered == kClusterSlots) {
    h.ready = true;
    h.state = "connected";
    return h;
  }
  h.state = auth_failed ? "auth_failed"
            : static_cast<int>(down.size()) == h.masters
                ? (circuit_open ? "circuit_open" : "disconnected")
                : "partial";
  for (const std::string& d : down) {
    if (!h.error.empty()) h.error += "; ";
    h.error += d;
  }
  if (h.slots_covered < kClusterSlots) {
    if (!h.error.empty()) h.error += "; ";
    h.error += fmt::format("{} slots have no master", kClusterSlots - h.slots_covered);
  }
  return h;
}

CircuitBreaker::State ClusterRouter::circuit_state() const {
  auto worst = CircuitBreaker::State::kClosed;
  std::lock_guard lock(mu_);
  for (const auto& node : nodes_) {
    const auto s = node->breaker.state();
    if (s == CircuitBreaker::State::kOpen) return s;
    if (s == CircuitBreaker::State::kHalfOpen) worst = s;
  }
  return worst;
}

std::uint64_t ClusterRouter::circuits_opened() const {
  std::uint64_t total = 0;
  std::lock_guard lock(mu_);
  for (const auto& node : nodes_) total += node->breaker.times_opened();
  return total;
}

void ClusterRouter::for_each_master(
    const std::function<void(const std::string&, int, int, CircuitBreaker::State)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& node : nodes_) {
    if (node->slots == 0) continue;
    int ready = 0;
    for (const auto& c : node->connections) ready += c->ready() ? 1 : 0;
    fn(node->name, node->slots, ready, node->breaker.state());
  }
}

}  // namespace floodgate::redis
