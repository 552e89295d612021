// File: admin/redis_fleet.h
//
// RedisFleet: the Fleet kept in the Redis the decisions use (standalone, Sentinel or Cluster).
//
//   fg:admin:{fg}:records            HASH id -> record (list entries and overrides)
//   fg:admin:{fg}:version            a counter, INCR'd by every change
//   fg:admin:{fg}:changes:<db>       the channel each change's new version is PUBLISHed on
//   fg:admin:{fg}:instances          ZSET instance id -> last report time (ms)
//   fg:admin:{fg}:report:<instance>  the instance's stats report, with a TTL of 6 s
//
// One hash tag: one Cluster slot. Every instance holds the records as its local snapshots
// (AccessLists, Overrides). A change is announced as "<version> <id>": an instance whose records
// are at the version before reads that one record (HGET) and applies it; any gap (a lost message,
// a reconnect, a restart) and the version poll every 250 ms lead to a reload of them all (HSCAN,
// 1000 a page). A reload of 100,000 records takes ~1 s; one record, milliseconds. Expiry is checked
// on read (and an expired record is deleted by whoever loads it). Records survive restarts of
// floodgate: an instance loads them as it starts. Each instance writes its report every 2 s; a dead
// instance's report expires and it drops out of the fleet.
//
// Thread-safety: every member may be called from any thread. The work runs on a thread of its own
// and on the store's.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "admin/access_lists.h"
#include "admin/fleet.h"
#include "admin/overrides.h"
#include "floodgate/redis_store.h"

namespace floodgate::admin {

class RedisFleet final : public Fleet {
 public:
  struct Options {
    std::string instance_id;
    int db = 0;  // the Redis database (REDIS_DB): part of the channel's name
    // report(): this instance's stats report (JSON), written every report_every.
    std::function<std::string()> report;
    std::chrono::milliseconds poll_every{250};
    std::chrono::milliseconds report_every{2000};
    std::chrono::milliseconds report_ttl{6000};
    std::function<void(std::string_view level, std::string_view message)> log;
  };

  // Everything is borrowed and must outlive the fleet. Starts at once.
  RedisFleet(RedisStore& redis, AccessLists& lists, Overrides& overrides, Options options);
  ~RedisFleet() override;

  void save(const std::string& id, const std::string& record,
            const std::vector<std::string>& replaces, Done done) override;
  void erase(const std::string& id, Done done) override;
  std::vector<std::string> reports() const override;

 private:
  // send(): redis_.command(), counted in in_flight_ so that the destructor can wait for it.
  void send(std::vector<std::string> args, const std::string& routing,
            std::chrono::milliseconds timeout, std::function<void(RedisValue)> then);
  void run();
  void reload();
  // apply_one(): reads record `id` and applies it (or its absence); false when it could not be
  // read or parsed (a reload follows).
  bool apply_one(const std::string& id);
  void publish_report();
  void changed(const std::string& id, Done done);
  // announce_locked(): version `v` changed record `id`: queued for apply_one() when it follows
  // what is applied or queued, else noted for a reload. Requires mu_.
  void announce_locked(std::int64_t v, const std::string& id);

  RedisStore& redis_;
  AccessLists& lists_;
  Overrides& overrides_;
  Options options_;
  const std::string channel_;

  // What the store's subscription callbacks reach the fleet through (null once it is gone).
  struct Link {
    std::mutex mu;
    RedisFleet* fleet = nullptr;
  };
  std::shared_ptr<Link> link_ = std::make_shared<Link>();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;        // guarded by mu_
  bool reload_wanted_ = true;    // guarded by mu_
  std::int64_t announced_ = -1;  // guarded by mu_: the newest version announced
  std::deque<std::pair<std::int64_t, std::string>> pending_;  // guarded by mu_: (version, id)
  std::int64_t applied_ = -1;                                 // guarded by mu_
  std::vector<std::string> reports_;                          // guarded by mu_
  int in_flight_ = 0;  // guarded by mu_: commands sent, not answered yet
  std::thread thread_;
};

}  // namespace floodgate::admin
