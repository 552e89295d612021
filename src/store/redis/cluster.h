// File: store/redis/cluster.h
//
// ClusterRouter: the Redis Cluster half of the Redis store (redis+cluster://). It knows which
// master serves each of the 16384 hash slots and keeps a pool of pipelined connections (and a
// circuit breaker) per master; the store routes each script call to the master of its keys' slot.
//
// The slot map comes from CLUSTER SLOTS, asked of any node that answers (the seeds at first). It
// is asked again when a node answers MOVED (the slot is also moved at once, so the call is resent
// without waiting), when a connection to a node fails (every 100 ms while one is down: a failover
// promotes a replica elsewhere), and every 5 s otherwise. Nodes that leave the map keep their
// connections (a restarted master comes back as a replica and may be promoted again); they take no
// traffic.
//
// Threading: the router lives on the store's io thread; route(), node_at(), moved() and
// refresh_soon() are called there only. health() and for_each_connection() may be called from
// any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "floodgate/redis_store.h"
#include "floodgate/store.h"
#include "store/redis/circuit_breaker.h"
#include "store/redis/cluster_slot.h"
#include "store/redis/connection.h"

namespace floodgate::redis {

class ClusterRouter {
 public:
  // Node: one server of the cluster, by address.
  struct Node {
    Node(std::string host_, std::uint16_t port_, const RedisOptions& options)
        : name(host_ + ":" + std::to_string(port_)),
          endpoint(std::move(host_), port_),
          breaker(options.breaker_failures,
                  std::chrono::duration_cast<std::chrono::microseconds>(options.breaker_cooldown)
                      .count()) {}

    // pick(): a ready connection, the same one until rotate(); null when none is ready.
    Connection* pick();

    const std::string name;  // "host:port"
    Endpoint endpoint;
    CircuitBreaker breaker;
    std::vector<std::unique_ptr<Connection>> connections;
    std::size_t next = 0;  // io thread only: the connection pick() tries first
    // guarded by the router's mu_
    std::string error;        // why the last connection attempt failed; empty once connected
    bool ever_ready = false;  // a connection completed its handshake once
    int slots = 0;            // slots this node serves as master in the current map
  };

  using Log = std::function<void(std::string_view level, std::string_view message)>;
  // on_ready(): a connection of some node completed its handshake (for the store's bookkeeping).
  using ReadyListener = std::function<void()>;

  ClusterRouter(boost::asio::io_context& io, const RedisOptions& options,
                boost::asio::ssl::context& ssl, const std::vector<std::string>& handshake, Log log,
                ReadyListener on_ready);
  ~ClusterRouter();
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  // start(): connects to the seeds. stop(): closes every connection (io thread).
  void start();
  void stop();

  // route(): the master serving `slot`, or null when the map has none for it yet.
  Node* route(std::uint16_t slot) const { return slots_[slot]; }
  // node_at(): the node at "host:port", connecting to it when it is new (ASK and MOVED targets).
  Node* node_at(std::string_view address);
  // moved(): Redis answered MOVED: `slot` is now served by `address`. Updates the slot at once
  // and refreshes the whole map soon (a MOVED rarely comes alone). Returns the new master.
  Node* moved(std::uint16_t slot, std::string_view address);
  // refresh_soon(): asks for the slot map again, at most once per 100 ms.
  void refresh_soon();
  // rotate(): each node's next calls go to its next connection. Called once per turn of the
  // store's loop, so that the calls of one turn share one connection per node (one write, and the
  // checks of one key decided in their order).
  void rotate();

  struct Health {
    bool ready = false;  // every slot has a master with a ready connection and a closed circuit
    std::string state;   // connected, connecting, partial, auth_failed, disconnected
    std::string error;   // what is wrong, naming the node(s)
    int masters = 0;
    int slots_covered = 0;
  };
  Health health() const;

  // map_loads(): slot maps applied (every CLUSTER SLOTS answer taken, changed or not).
  std::uint64_t map_loads() const { return map_loads_.load(std::memory_order_relaxed); }

  // Worst circuit state over the masters, and how many times any circuit opened.
  CircuitBreaker::State circuit_state() const;
  std::uint64_t circuits_opened() const;

  template <class Fn>
  void for_each_connection(Fn fn) const {
    std::lock_guard lock(mu_);
    for (const auto& node : nodes_)
      for (const auto& c : node->connections) fn(*c);
  }

  // for_each_master(): (name, slots, ready connections, circuit state) of every current master.
  void for_each_master(
      const std::function<void(const std::string&, int, int, CircuitBreaker::State)>& fn) const;

 private:
  class SlotsCall;

  Node* add_node(std::string host, std::uint16_t port);  // io thread, takes mu_
  void on_state(Node& node, bool ready, const std::string& error);
  void refresh_now();
  void apply(const redisReply& reply, const Node& asked);
  void schedule_periodic();

  boost::asio::io_context& io_;
  const RedisOptions& options_;
  boost::asio::ssl::context& ssl_;
  const std::vector<std::string>& handshake_;
  Log log_;
  ReadyListener on_ready_;

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Node>>
      nodes_;  // append only (guarded by mu_; io thread reads freely)

  // io thread only
  std::array<Node*, kClusterSlots> slots_{};
  boost::asio::steady_timer refresh_timer_;   // the coalesced refresh_soon()
  boost::asio::steady_timer periodic_timer_;  // every 5 s, or 100 ms while something is down
  bool refresh_scheduled_ = false;
  bool refresh_in_flight_ = false;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_refresh_{};
  std::size_t next_ask_ = 0;  // which node to ask next
  bool map_known_ = false;
  std::atomic<std::uint64_t> map_loads_{0};
};

// parse_redirect(): "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" → slot and address.
struct Redirect {
  bool ask = false;
  std::uint16_t slot = 0;
  std::string_view address;
};
bool parse_redirect(std::string_view error, Redirect& out);

}  // namespace floodgate::redis
