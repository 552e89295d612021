// The Redis store on a real Redis Cluster (redis+cluster://): 3 masters + 3 replicas started by
// scripts/redis-cluster.sh on loopback ports. Keys spread over every master and the decisions are
// those of a standalone Redis; a slot range moved by `redis-cli --cluster reshard` under load
// loses and doubles no count; a master killed under load is replaced by its replica without a
// restart of ours, and the gap is reported.
#include <hiredis/hiredis.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "floodgate/limiter.h"
#include "floodgate/redis_store.h"
#include "store/redis/cluster_slot.h"
#include "testlib/command.h"
#include "testlib/random_policy.h"
#include "testlib/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using testing::random_policy;

const std::string kScript = FLOODGATE_SOURCE_DIR "/scripts/redis-cluster.sh";

std::pair<int, std::string> run(const std::string& command) {
  return floodgate::testing::run_command(command);
}

// Reply of one command over a blocking hiredis connection to 127.0.0.1:port.
struct ReplyText {
  bool ok = false;
  long long integer = 0;
  std::string text;
};
ReplyText command(int port, const std::vector<std::string>& args) {
  ReplyText out;
  redisContext* c = redisConnect("127.0.0.1", port);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    out.text = "connect failed";
    return out;
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (reply != nullptr) {
    out.ok = reply->type != REDIS_REPLY_ERROR;
    out.integer = reply->integer;
    if (reply->str) out.text.assign(reply->str, reply->len);
    freeReplyObject(reply);
  }
  redisFree(c);
  return out;
}

struct Master {
  int port = 0;
  int pid = 0;
  int first_slot = 0;
  int last_slot = 0;
  std::string id;
};

// One completion a test thread can wait on.
class Waiter final : public Completion {
 public:
  void complete() override { done_.set_value(); }
  void wait() { done_.get_future().wait(); }

 private:
  std::promise<void> done_;
};

class RedisCluster : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fg-cluster-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    // A short node timeout makes the failover quick, but on a loaded machine a master slow to
    // answer its peers for that long is failed over too (and acknowledged writes not yet
    // replicated are lost: Redis Cluster replicates asynchronously). Only the failover test wants
    // one.
    const bool failover =
        std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())
            .find("Failover") != std::string::npos;
    auto [status, out] =
        run(kScript + " up --node-timeout " + (failover ? "1000" : "5000") + " --dir " + dir_);
    ASSERT_EQ(status, 0) << out;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("REDIS_URL=", 0) == 0) url_ = line.substr(10);
      Master m;
      if (std::sscanf(line.c_str(), "master 127.0.0.1:%d pid=%d slots=%d-%d", &m.port, &m.pid,
                      &m.first_slot, &m.last_slot) == 4) {
        m.id = command(m.port, {"CLUSTER", "MYID"}).text;
        masters_.push_back(m);
      }
    }
    ASSERT_FALSE(url_.empty()) << out;
    ASSERT_EQ(masters_.size(), 3u) << out;
  }
  void TearDown() override {
    run(kScript + " down --dir " + dir_);
    std::filesystem::remove_all(dir_);
  }

  RedisOptions options() const {
    RedisOptions o = parse_redis_url(url_).value();
    o.timeout = 500ms;  // a loaded test machine: no timeouts while the masters are up
    return o;
  }

  const Master& master_of(int slot) const {
    for (const Master& m : masters_) {
      if (slot >= m.first_slot && slot <= m.last_slot) return m;
    }
    return masters_.front();
  }

  // keys_in(): `count` user keys whose slot is in [first, last].
  static std::vector<std::string> keys_in(int first, int last, std::size_t count,
                                          const std::string& prefix, Algorithm algorithm) {
    std::vector<std::string> keys;
    for (int i = 0; keys.size() < count && i < 10'000'000; ++i) {
      std::string key = prefix + std::to_string(i);
      const int slot = redis::key_slot(RedisStore::redis_key(algorithm, key));
      if (slot >= first && slot <= last) keys.push_back(std::move(key));
    }
    return keys;
  }

  static std::uint64_t metric(const RedisStore& store, const std::string& series) {
    std::string text;
    store.append_metrics(text);
    const auto at = text.find(series + " ");
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + series.size() + 1));
  }

  // stepwise_options(): for tests that move a slot by hand, one step at a time.
  RedisOptions stepwise_options() const {
    RedisOptions o = options();
    o.timeout = 3s;  // each step is one call: room for a machine busy with other tests
    // No periodic map refresh between the steps: only the redirects they provoke teach the store.
    o.cluster_refresh = std::chrono::minutes(10);
    return o;
  }

  // map_loads(): floodgate_store_cluster_slot_map_loads_total.
  static std::uint64_t map_loads(const RedisStore& store) {
    return metric(store, R"(floodgate_store_cluster_slot_map_loads_total{store="redis"})");
  }

  // redirects(): floodgate_store_cluster_redirects_total of `kind` (moved, ask, tryagain, ...).
  static std::uint64_t redirects(const RedisStore& store, const std::string& kind) {
    return metric(
        store, R"(floodgate_store_cluster_redirects_total{store="redis",kind=")" + kind + R"("})");
  }

  // migrate(): moves one key from one master to another (MIGRATE), as a resharding would.
  static void migrate(const Master& from, const Master& to, const std::string& key) {
    const ReplyText r = command(
        from.port, {"MIGRATE", "127.0.0.1", std::to_string(to.port), "", "0", "5000", "KEYS", key});
    ASSERT_TRUE(r.ok) << r.text;
  }

  std::string dir_;
  std::string url_;
  std::vector<Master> masters_;
};

// Every algorithm, keys on every master, batches mixing slots and repeating keys: the cluster
// decides exactly as one standalone Redis does at the same (test-clock) times.
TEST_F(RedisCluster, DecidesAsStandaloneRedisWithKeysOnEveryMaster) {
  ManualClock clock(Micros{1'700'000'000'000'000});
  RedisOptions co = options();
  co.test_clock = &clock;
  RedisStore cluster(co);
  ASSERT_TRUE(cluster.wait_connected(10s)) << cluster.health().error;

  testing::RedisServer standalone;
  RedisOptions so;
  so.host = "127.0.0.1";
  so.port = static_cast<std::uint16_t>(standalone.port());
  so.timeout = 500ms;
  so.test_clock = &clock;
  RedisStore single(so);
  ASSERT_TRUE(single.wait_connected(5s));

  std::mt19937_64 rng(20261123);
  std::set<std::string> redis_keys;
  for (int a = 0; a < kAlgorithmCount; ++a) {
    const auto algorithm = static_cast<Algorithm>(a);
    // 12 keys, each with its own policy; every step checks a batch of 8 of them (repeats allowed,
    // decided in order), on both stores.
    std::vector<std::string> keys;
    std::vector<Policy> policies;
    for (int k = 0; k < 12; ++k) {
      keys.push_back("cl:" + std::to_string(a) + ":" + std::to_string(k));
      policies.push_back(random_policy(algorithm, rng));
      redis_keys.insert(RedisStore::redis_key(algorithm, keys.back()));
    }
    for (int step = 0; step < 40; ++step) {
      clock.advance(Micros{std::uniform_int_distribution<std::int64_t>(0, 400'000)(rng)});
      std::vector<CheckOp> ops;
      for (int i = 0; i < 8; ++i) {
        const auto k = std::uniform_int_distribution<std::size_t>(0, keys.size() - 1)(rng);
        ops.push_back(CheckOp{keys[k], &policies[k],
                              std::uniform_int_distribution<std::uint64_t>(0, 3)(rng)});
      }
      std::vector<Outcome> from_cluster(ops.size());
      std::vector<Outcome> from_single(ops.size());
      Waiter w1;
      cluster.check(ops, from_cluster, w1);
      w1.wait();
      Waiter w2;
      single.check(ops, from_single, w2);
      w2.wait();
      for (std::size_t i = 0; i < ops.size(); ++i) {
        SCOPED_TRACE(::testing::Message() << *ops[i].policy << " key " << ops[i].key << " step "
                                          << step << " cost " << ops[i].cost);
        ASSERT_EQ(from_cluster[i].status, StoreStatus::kOk) << cluster.health().error;
        ASSERT_EQ(from_single[i].status, StoreStatus::kOk);
        const Decision& c = from_cluster[i].decision;
        const Decision& s = from_single[i].decision;
        EXPECT_EQ(c.allowed, s.allowed);
        EXPECT_EQ(c.reason, s.reason);
        EXPECT_EQ(c.remaining, s.remaining);
        EXPECT_EQ(c.reset_after, s.reset_after);
        EXPECT_EQ(c.retry_after, s.retry_after);
        EXPECT_EQ(c.delay, s.delay);
        if (HasFailure()) {
          // The whole step, to tell an ordering problem from a decision problem.
          std::printf("the step's checks (key, cost: cluster's remaining / standalone's):");
          for (std::size_t j = 0; j < ops.size(); ++j) {
            std::printf(" [%s, %llu: %llu/%llu]", std::string(ops[j].key).c_str(),
                        static_cast<unsigned long long>(ops[j].cost),
                        static_cast<unsigned long long>(from_cluster[j].decision.remaining),
                        static_cast<unsigned long long>(from_single[j].decision.remaining));
          }
          std::printf("\n");
          return;
        }
      }
    }
  }

  // Where the keys are: CLUSTER KEYSLOT agrees with our routing, the slot's master holds the key
  // (COUNTKEYSINSLOT), and every master holds some.
  std::set<int> holders;
  for (const std::string& key : redis_keys) {
    const ReplyText slot = command(masters_.front().port, {"CLUSTER", "KEYSLOT", key});
    ASSERT_TRUE(slot.ok) << slot.text;
    ASSERT_EQ(slot.integer, redis::key_slot(key)) << key;
    const Master& owner = master_of(static_cast<int>(slot.integer));
    const ReplyText exists = command(owner.port, {"EXISTS", key});
    if (exists.integer == 0) continue;  // a check of cost 0 only: nothing written
    EXPECT_GE(
        command(owner.port, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot.integer)}).integer,
        1);
    holders.insert(owner.port);
  }
  EXPECT_EQ(holders.size(), 3u) << "the keys did not reach every master";
  EXPECT_TRUE(cluster.health().ready);
}

// A slot range moves from one master to another while checks run on keys in it: no check fails
// (MOVED and ASK are followed), and every key's count is exactly the number of admitted checks.
TEST_F(RedisCluster, ReshardingUnderLoadKeepsExactCounts) {
  RedisStore store(options());
  ASSERT_TRUE(store.wait_connected(10s)) << store.health().error;
  Limiter limiter(store);
  const Master& from = masters_[0];
  const Master& to = masters_[1];
  constexpr int kMoved = 200;  // redis-cli moves the source's lowest slots first
  const int first = from.first_slot;
  const int last = from.first_slot + kMoved - 1;
  const auto fixed = Policy::fixed_window(1'000'000, std::chrono::hours(1)).value();
  const auto log = Policy::sliding_window_log(100'000, std::chrono::hours(1)).value();
  struct Tracked {
    std::string key;
    const Policy* policy = nullptr;
    std::atomic<std::int64_t> admitted{0};
  };
  std::vector<std::unique_ptr<Tracked>> tracked;
  auto track = [&](std::string key, const Policy* policy) {
    auto t = std::make_unique<Tracked>();
    t->key = std::move(key);
    t->policy = policy;
    tracked.push_back(std::move(t));
  };
  for (auto& k : keys_in(first, last, 12, "reshard:fw:", Algorithm::kFixedWindow)) {
    track(k, &fixed);
  }
  // sliding_window_log touches two keys per decision: a half-moved pair answers TRYAGAIN.
  for (auto& k : keys_in(first, last, 4, "reshard:swl:", Algorithm::kSlidingWindowLog)) {
    track(k, &log);
  }
  ASSERT_EQ(tracked.size(), 16u);

  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::atomic<int> checks{0};
  std::string first_failure;
  std::mutex failure_mu;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&, t] {
      for (std::size_t i = static_cast<std::size_t>(t); !stop; ++i) {
        Tracked& k = *tracked[i % tracked.size()];
        const Outcome o = limiter.check(k.key, *k.policy);
        ++checks;
        if (o.status != StoreStatus::kOk) {
          if (failures++ == 0) {
            std::lock_guard lock(failure_mu);
            first_failure = store.health().state + ": " + store.health().error;
          }
        } else if (o.decision.allowed) {
          ++k.admitted;
        }
        std::this_thread::sleep_for(500us);
      }
    });
  }
  std::this_thread::sleep_for(200ms);
  const auto t0 = Steady::now();
  auto [status, out] =
      run("redis-cli --cluster reshard 127.0.0.1:" + std::to_string(from.port) +
          " --cluster-from " + from.id + " --cluster-to " + to.id + " --cluster-slots " +
          std::to_string(kMoved) + " --cluster-yes --cluster-pipeline 1 > /dev/null 2>&1");
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0).count();
  std::this_thread::sleep_for(200ms);
  stop = true;
  for (auto& t : load) t.join();
  ASSERT_EQ(status, 0) << "redis-cli --cluster reshard failed";

  // The keys now live on the target master.
  for (const auto& k : tracked) {
    const std::string key = RedisStore::redis_key(k->policy->algorithm(), k->key);
    EXPECT_EQ(command(to.port, {"EXISTS", key}).integer, 1) << key;
  }
  EXPECT_EQ(failures.load(), 0) << first_failure;
  // Exact counts: what each key's state says is consumed is what was admitted, no more, no less.
  for (const auto& k : tracked) {
    const Outcome peek = limiter.check(k->key, *k->policy, 0);
    ASSERT_EQ(peek.status, StoreStatus::kOk);
    EXPECT_EQ(static_cast<std::int64_t>(k->policy->limit() - peek.decision.remaining),
              k->admitted.load())
        << k->key;
  }
  const auto moved = redirects(store, "moved");
  const auto ask = redirects(store, "ask");
  const auto again = redirects(store, "tryagain");
  const auto not_local = redirects(store, "not_local");
  std::printf(
      "cluster reshard: %d slots moved in %lld ms under %d checks: %d failed; redirects followed: "
      "%llu MOVED, %llu ASK, %llu TRYAGAIN; %llu checks of node-wide calls sent again alone\n",
      kMoved, static_cast<long long>(took), checks.load(), failures.load(),
      static_cast<unsigned long long>(moved), static_cast<unsigned long long>(ask),
      static_cast<unsigned long long>(again), static_cast<unsigned long long>(not_local));
  EXPECT_GE(moved + ask, 1u) << "the load never met the moving slots";
}

// One slot migrated by hand, step by step, with checks in between: the source serves while it
// still holds the keys, answers ASK once they moved (followed with ASKING to the target), TRYAGAIN
// while a two-key decision's keys are split (retried until they are together), and MOVED once the
// slot is the target's. Counts carry over at every step.
TEST_F(RedisCluster, FollowsAskTryAgainAndMovedDuringAMigration) {
  RedisStore store(stepwise_options());
  ASSERT_TRUE(store.wait_connected(10s)) << store.health().error;
  Limiter limiter(store);
  const Master& from = masters_[0];
  const Master& to = masters_[1];
  const std::string user =
      keys_in(from.first_slot, from.last_slot, 1, "migrate:", Algorithm::kFixedWindow).front();
  const std::string slot = std::to_string(redis::key_slot(user));
  const std::string fw = RedisStore::redis_key(Algorithm::kFixedWindow, user);
  const std::string swl = RedisStore::redis_key(Algorithm::kSlidingWindowLog, user);
  const auto fixed = Policy::fixed_window(100, std::chrono::hours(1)).value();
  const auto log = Policy::sliding_window_log(100, std::chrono::hours(1)).value();
  auto remaining = [&](const Policy& policy, std::uint64_t cost) {
    const Outcome o = limiter.check(user, policy, cost);
    EXPECT_EQ(o.status, StoreStatus::kOk) << store.health().error;
    return o.decision.remaining;
  };

  EXPECT_EQ(remaining(fixed, 1), 99u);
  EXPECT_EQ(remaining(log, 1), 99u);
  ASSERT_EQ(command(from.port, {"EXISTS", swl + ":m"}).integer, 1);
  ASSERT_TRUE(command(to.port, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from.id}).ok);
  ASSERT_TRUE(command(from.port, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to.id}).ok);
  EXPECT_EQ(remaining(fixed, 1), 98u);  // the keys are still on the source: it decides
  EXPECT_EQ(redirects(store, "ask"), 0u);

  migrate(from, to, fw);
  EXPECT_EQ(remaining(fixed, 1), 97u);  // ASK: decided on the target, on the migrated count
  EXPECT_GE(redirects(store, "ask"), 1u);

  migrate(from, to, swl);  // half of the sliding_window_log pair
  std::thread rest([&] {
    // The other half moves once the check has met the split pair (not after a fixed sleep: on
    // a busy machine the check may start late and find the pair whole already).
    const auto until = Steady::now() + 2s;
    while (redirects(store, "tryagain") == 0 && Steady::now() < until)
      std::this_thread::sleep_for(1ms);
    migrate(from, to, swl + ":m");
  });
  EXPECT_EQ(remaining(log, 1), 98u);  // TRYAGAIN until the pair is whole on the target
  rest.join();
  EXPECT_GE(redirects(store, "tryagain"), 1u);

  const std::uint64_t loads = map_loads(store);
  for (const Master& m : masters_) {
    ASSERT_TRUE(command(m.port, {"CLUSTER", "SETSLOT", slot, "NODE", to.id}).ok);
  }
  EXPECT_EQ(remaining(fixed, 1), 96u);  // MOVED: the slot is the target's now
  EXPECT_EQ(remaining(log, 1), 97u);
  // The store learns of it by the MOVED answer, unless a slot map read in between (a refresh a
  // slow start or a reconnection asked for) taught it first: then no MOVED was due.
  EXPECT_TRUE(redirects(store, "moved") >= 1 || map_loads(store) > loads)
      << "neither a MOVED nor a slot map read";
  EXPECT_EQ(command(from.port, {"CLUSTER", "COUNTKEYSINSLOT", slot}).integer, 0);
  EXPECT_EQ(command(to.port, {"CLUSTER", "COUNTKEYSINSLOT", slot}).integer, 3);
}

// Checks of several slots of one master go out as one node-wide call (no declared keys). When one
// of their slots is half migrated or has moved behind the client's back, that check alone comes
// back undecided, goes again on its own with its keys declared, and ASK, TRYAGAIN or MOVED lead
// it on: every check of the batch is decided, on the count it had.
TEST_F(RedisCluster, NodeWideCallsSendACheckOfAMovingSlotOnAlone) {
  RedisStore store(stepwise_options());
  ASSERT_TRUE(store.wait_connected(10s)) << store.health().error;
  const Master& from = masters_[0];
  const Master& to = masters_[1];
  // Three user keys of different slots on the source: the last one's slot will move.
  std::vector<std::string> users;
  std::set<int> slots;
  for (const std::string& k :
       keys_in(from.first_slot, from.last_slot, 50, "nodewide:", Algorithm::kFixedWindow)) {
    if (slots.insert(redis::key_slot(RedisStore::redis_key(Algorithm::kFixedWindow, k))).second) {
      users.push_back(k);
    }
    if (users.size() == 3) break;
  }
  ASSERT_EQ(users.size(), 3u);
  const std::string& mover = users.back();
  const std::string slot = std::to_string(redis::key_slot(mover));
  const std::string fw = RedisStore::redis_key(Algorithm::kFixedWindow, mover);
  const std::string swl = RedisStore::redis_key(Algorithm::kSlidingWindowLog, mover);
  const auto fixed = Policy::fixed_window(100, std::chrono::hours(1)).value();
  const auto log = Policy::sliding_window_log(100, std::chrono::hours(1)).value();

  // batch(): one Store::check of every user key under `policy`: the remaining count of each.
  auto batch = [&](const Policy& policy) {
    std::vector<CheckOp> ops;
    for (const std::string& u : users) ops.push_back(CheckOp{u, &policy, 1});
    std::vector<Outcome> outcomes(ops.size());
    Waiter w;
    store.check(ops, outcomes, w);
    w.wait();
    std::vector<std::uint64_t> remaining;
    for (const Outcome& o : outcomes) {
      EXPECT_EQ(o.status, StoreStatus::kOk) << store.health().error;
      remaining.push_back(o.decision.remaining);
    }
    return remaining;
  };
  using Counts = std::vector<std::uint64_t>;

  EXPECT_EQ(batch(fixed), (Counts{99, 99, 99}));
  EXPECT_EQ(batch(log), (Counts{99, 99, 99}));
  EXPECT_EQ(redirects(store, "not_local"), 0u);
  ASSERT_TRUE(command(to.port, {"CLUSTER", "SETSLOT", slot, "IMPORTING", from.id}).ok);
  ASSERT_TRUE(command(from.port, {"CLUSTER", "SETSLOT", slot, "MIGRATING", to.id}).ok);
  EXPECT_EQ(batch(fixed), (Counts{98, 98, 98}));  // the keys are still on the source
  EXPECT_EQ(redirects(store, "not_local"), 0u);

  migrate(from, to, fw);  // the node-wide call misses it; alone, ASK takes it to the target
  EXPECT_EQ(batch(fixed), (Counts{97, 97, 97}));
  EXPECT_GE(redirects(store, "not_local"), 1u);
  EXPECT_GE(redirects(store, "ask"), 1u);

  // Half of the log's pair moved: the probe of both keys fails before anything is written; alone,
  // the check meets TRYAGAIN until the other half follows.
  migrate(from, to, swl);
  const auto not_local_before = redirects(store, "not_local");
  std::thread rest([&] {
    const auto until = Steady::now() + 2s;
    while (redirects(store, "tryagain") == 0 && Steady::now() < until)
      std::this_thread::sleep_for(1ms);
    migrate(from, to, swl + ":m");
  });
  EXPECT_EQ(batch(log), (Counts{98, 98, 98}));
  rest.join();
  EXPECT_GT(redirects(store, "not_local"), not_local_before);
  EXPECT_GE(redirects(store, "tryagain"), 1u);

  // The slot is the target's now, and the client's map still says the source. (The not_local
  // answers above asked for the map again, at most once per 100 ms: that refresh is let run
  // first, or it could teach the store the new owner before the batch below meets MOVED.)
  std::this_thread::sleep_for(300ms);
  for (const Master& m : masters_) {
    ASSERT_TRUE(command(m.port, {"CLUSTER", "SETSLOT", slot, "NODE", to.id}).ok);
  }
  const auto moved_before = redirects(store, "moved");
  const auto not_local_moved = redirects(store, "not_local");
  EXPECT_EQ(batch(fixed), (Counts{96, 96, 96}));
  EXPECT_EQ(batch(log), (Counts{97, 97, 97}));
  // A check the source no longer serves went alone and met MOVED (unless a refresh on a machine
  // slower than the pause above taught the store the new owner first: then none went alone).
  if (redirects(store, "not_local") > not_local_moved) {
    EXPECT_GT(redirects(store, "moved"), moved_before);
  }
  EXPECT_EQ(command(from.port, {"CLUSTER", "COUNTKEYSINSLOT", slot}).integer, 0);
  EXPECT_EQ(command(to.port, {"CLUSTER", "COUNTKEYSINSLOT", slot}).integer, 3);
}

// A master dies (SIGKILL) under load: checks on its slots fail (the failure mode answers) until
// the cluster promotes its replica, then resume there without a restart of anything of ours.
TEST_F(RedisCluster, FollowsAFailoverUnderLoad) {
  RedisStore store(options());
  ASSERT_TRUE(store.wait_connected(10s)) << store.health().error;
  Limiter limiter(store);
  const Master& victim = masters_[2];
  const auto policy = Policy::fixed_window(1'000'000, std::chrono::hours(1)).value();
  const std::string key =
      keys_in(victim.first_slot, victim.last_slot, 1, "failover:", Algorithm::kFixedWindow).front();
  // A key on a master that stays up, to see what the others do meanwhile.
  const std::string other =
      keys_in(masters_[0].first_slot, masters_[0].last_slot, 1, "steady:", Algorithm::kFixedWindow)
          .front();
  ASSERT_EQ(limiter.check(key, policy).status, StoreStatus::kOk);

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> first_failure_ms{-1};
  std::atomic<std::int64_t> back_ms{-1};
  std::atomic<int> ok_after{0};
  std::atomic<int> other_failures{0};
  std::atomic<int> other_checks{0};
  const auto t0 = Steady::now();
  auto since = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t0).count();
  };
  std::thread load([&] {
    while (!stop) {
      const Outcome o = limiter.check(key, policy);
      if (o.status != StoreStatus::kOk) {
        if (first_failure_ms < 0) first_failure_ms = since();
        back_ms = -1;
        ok_after = 0;
      } else if (first_failure_ms >= 0) {
        if (back_ms < 0) back_ms = since();
        ++ok_after;
      }
      ++other_checks;
      if (limiter.check(other, policy).status != StoreStatus::kOk) ++other_failures;
      std::this_thread::sleep_for(2ms);
    }
  });
  std::this_thread::sleep_for(300ms);
  const auto killed_at = since();
  ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);
  const auto deadline = Steady::now() + 20s;
  while (Steady::now() < deadline && ok_after < 50) std::this_thread::sleep_for(50ms);
  stop = true;
  load.join();
  ASSERT_GE(first_failure_ms.load(), 0) << "the master's death was never noticed";
  ASSERT_GE(back_ms.load(), 0) << "no answer from the promoted replica: " << store.health().error;
  EXPECT_GE(ok_after.load(), 50);
  std::printf(
      "cluster failover (cluster-node-timeout 1000 ms): checks on the dead master's slots failed "
      "for %lld ms (from %lld ms after the kill); on another master %d of %d checks failed "
      "meanwhile\n",
      static_cast<long long>(back_ms - first_failure_ms),
      static_cast<long long>(first_failure_ms - killed_at), other_failures.load(),
      other_checks.load());
  EXPECT_LT(back_ms - first_failure_ms, 20'000);
  // The promoted replica holds the count (replicated before the kill, or written since).
  const Outcome after = limiter.check(key, policy, 0);
  EXPECT_EQ(after.status, StoreStatus::kOk);
  EXPECT_LT(after.decision.remaining, 1'000'000u);
  // Every slot has a master again (the dead one has none left).
  const auto until = Steady::now() + 5s;
  while (Steady::now() < until && !store.health().ready) std::this_thread::sleep_for(20ms);
  EXPECT_TRUE(store.health().ready) << store.health().error;
}

TEST(RedisClusterDown, NoNodeAnsweringMeansNotReadyNamingTheNode) {
  RedisOptions o = parse_redis_url("redis+cluster://127.0.0.1:1").value();  // nobody on port 1
  RedisStore store(o);
  EXPECT_FALSE(store.wait_connected(500ms));
  const StoreHealth h = store.health();
  EXPECT_FALSE(h.ready);
  EXPECT_NE(h.error.find("127.0.0.1:1"), std::string::npos) << h.error;
  Limiter limiter(store);
  const auto policy = Policy::fixed_window(10, std::chrono::seconds(1)).value();
  EXPECT_EQ(limiter.check("nobody", policy).status, StoreStatus::kUnavailable);
}

}  // namespace
}  // namespace floodgate
