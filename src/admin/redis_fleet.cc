#include "admin/redis_fleet.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <future>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "admin/records.h"

namespace floodgate::admin {
namespace {

const std::string kRecords = "fg:admin:{fg}:records";
const std::string kVersion = "fg:admin:{fg}:version";
const std::string kInstances = "fg:admin:{fg}:instances";
const std::string kReportPrefix = "fg:admin:{fg}:report:";
constexpr std::chrono::milliseconds kTimeout{1000};

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// version_of(): the counter GET answered (a nil is version 0: no change made yet).
std::int64_t version_of(const RedisValue& v) {
  std::int64_t version = 0;
  if (v.type == RedisValue::Type::kString) {
    std::from_chars(v.text.data(), v.text.data() + v.text.size(), version);
  }
  return version;
}

std::string why(const RedisValue& v) {
  return v.type == RedisValue::Type::kFailed ? "redis: " + v.text : v.text;
}

}  // namespace

RedisFleet::RedisFleet(RedisStore& redis, AccessLists& lists, Overrides& overrides, Options options)
    : redis_(redis),
      lists_(lists),
      overrides_(overrides),
      options_(std::move(options)),
      // Pub/sub channels are server-wide: the database in the name keeps fleets on different
      // databases of one Redis from waking each other.
      channel_("fg:admin:{fg}:changes:" + std::to_string(options_.db)) {
  // The subscription lives as long as the store, which may outlive the fleet: it reaches the
  // fleet through `link_`, which the destructor cuts.
  link_->fleet = this;
  redis_.subscribe(
      channel_,
      [link = link_](std::string_view message) {
        // "<version> <id>"
        std::int64_t version = -1;
        const auto [end, ec] =
            std::from_chars(message.data(), message.data() + message.size(), version);
        const std::string_view rest =
            message.substr(static_cast<std::size_t>(end - message.data()));
        const std::string id(rest.empty() ? rest : rest.substr(1));
        std::lock_guard guard(link->mu);
        if (link->fleet == nullptr || ec != std::errc()) return;
        std::lock_guard lock(link->fleet->mu_);
        link->fleet->announce_locked(version, id);
        link->fleet->wake_.notify_all();
      },
      [link = link_] {
        // (Re)subscribed: whatever was announced meanwhile was missed.
        std::lock_guard guard(link->mu);
        if (link->fleet == nullptr) return;
        std::lock_guard lock(link->fleet->mu_);
        link->fleet->reload_wanted_ = true;
        link->fleet->wake_.notify_all();
      });
  thread_ = std::thread([this] { run(); });
}

RedisFleet::~RedisFleet() {
  {
    std::lock_guard guard(link_->mu);
    link_->fleet = nullptr;
  }
  std::unique_lock lock(mu_);
  stopping_ = true;
  wake_.notify_all();
  lock.unlock();
  thread_.join();
  // Commands still in flight answer into this object: wait for them (each has a deadline).
  lock.lock();
  wake_.wait(lock, [this] { return in_flight_ == 0; });
}

void RedisFleet::send(std::vector<std::string> args, const std::string& routing,
                      std::chrono::milliseconds timeout, std::function<void(RedisValue)> then) {
  {
    std::lock_guard lock(mu_);
    ++in_flight_;
  }
  redis_.command(std::move(args), routing, timeout, [this, then = std::move(then)](RedisValue v) {
    then(std::move(v));
    std::lock_guard lock(mu_);
    --in_flight_;
    wake_.notify_all();
  });
}

std::vector<std::string> RedisFleet::reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

void RedisFleet::announce_locked(std::int64_t v, const std::string& id) {
  const std::int64_t known = pending_.empty() ? applied_ : pending_.back().first;
  if (v <= known) return;  // applied or queued already (this instance's own change, say)
  if (v == known + 1 && !id.empty() && applied_ >= 0) {
    pending_.emplace_back(v, id);
  } else {
    announced_ = std::max(announced_, v);  // a gap: reload everything
  }
}

void RedisFleet::save(const std::string& id, const std::string& record,
                      const std::vector<std::string>& replaces, Done done) {
  // The new record first: should the HDEL of the replaced ones be lost, a reload keeps the newer
  // of two records for one key and deletes the other.
  std::vector<std::string> del = {"HDEL", kRecords};
  del.insert(del.end(), replaces.begin(), replaces.end());
  send({"HSET", kRecords, id, record}, kRecords, kTimeout,
       [this, id, del = std::move(del), done = std::move(done)](RedisValue v) mutable {
         if (!v.ok()) {
           done(why(v));
           return;
         }
         if (del.size() > 2) {
           send(std::move(del), kRecords, kTimeout, [](RedisValue) {});
         }
         changed(id, std::move(done));
       });
}

void RedisFleet::erase(const std::string& id, Done done) {
  send({"HDEL", kRecords, id}, kRecords, kTimeout,
       [this, id, done = std::move(done)](RedisValue v) mutable {
         if (!v.ok()) {
           done(why(v));
           return;
         }
         changed(id, std::move(done));
       });
}

void RedisFleet::changed(const std::string& id, Done done) {
  send({"INCR", kVersion}, kVersion, kTimeout, [this, id, done = std::move(done)](RedisValue v) {
    if (v.type != RedisValue::Type::kInteger) {
      done(why(v));
      return;
    }
    send({"PUBLISH", channel_, std::to_string(v.integer) + " " + id}, channel_, kTimeout,
         [](RedisValue) {});
    {
      // This instance applied the change already; reading it back keeps the version in step.
      std::lock_guard lock(mu_);
      announce_locked(v.integer, id);
      wake_.notify_all();
    }
    done("");
  });
}

namespace {

// call(): a command, waited for (the fleet's own thread only).
RedisValue call(RedisStore& redis, std::vector<std::string> args, const std::string& routing) {
  std::promise<RedisValue> promise;
  auto reply = promise.get_future();
  redis.command(std::move(args), routing, kTimeout,
                [&promise](RedisValue v) { promise.set_value(std::move(v)); });
  return reply.get();
}

}  // namespace

void RedisFleet::reload() {
  const RedisValue version = call(redis_, {"GET", kVersion}, kVersion);
  if (!version.ok()) return;
  const std::int64_t v = version_of(version);
  // HSCAN in pages rather than one HGETALL: a large hash neither blocks Redis for long nor
  // outlasts a call's timeout. A record seen twice (the hash was rehashed meanwhile) counts once.
  std::map<std::string, std::string> all;
  std::string cursor = "0";
  do {
    const RedisValue page = call(redis_, {"HSCAN", kRecords, cursor, "COUNT", "1000"}, kRecords);
    if (page.type != RedisValue::Type::kArray || page.elements.size() != 2 ||
        page.elements[1].type != RedisValue::Type::kArray) {
      return;
    }
    cursor = page.elements[0].text;
    const auto& fields = page.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
      all[fields[i].text] = fields[i + 1].text;
    }
  } while (cursor != "0");
  const Micros now =
      std::chrono::duration_cast<Micros>(std::chrono::system_clock::now().time_since_epoch());
  std::vector<ListEntry> entries;
  std::vector<Override> overrides;
  std::vector<std::string> expired = {"HDEL", kRecords};  // and superseded
  std::size_t damaged = 0;
  for (const auto& [id, text] : all) {
    auto parsed = parse_record(text);
    if (!parsed) {
      ++damaged;
      continue;
    }
    if (auto* e = std::get_if<ListEntry>(&*parsed)) {
      if (e->expires.count() != 0 && e->expires <= now) {
        expired.push_back(id);
      } else {
        entries.push_back(std::move(*e));
      }
      continue;
    }
    auto& o = std::get<Override>(*parsed);
    if (o.expires.count() != 0 && o.expires <= now) {
      expired.push_back(id);
    } else if (auto built = overrides_.build(std::move(o))) {
      overrides.push_back(std::move(*built));
    } else {
      ++damaged;
    }
  }
  // Two instances that set the same key at once leave two records: the newer one stays.
  std::stable_sort(entries.begin(), entries.end(),
                   [](const ListEntry& a, const ListEntry& b) { return a.created > b.created; });
  std::set<std::tuple<ListKind, bool, std::string>> seen_entries;
  std::erase_if(entries, [&](const ListEntry& e) {
    if (seen_entries.emplace(e.list, e.is_ip, e.value).second) return false;
    expired.push_back(e.id);
    return true;
  });
  std::stable_sort(overrides.begin(), overrides.end(),
                   [](const Override& a, const Override& b) { return a.created > b.created; });
  std::set<std::tuple<bool, std::string, std::string>> seen_overrides;
  std::erase_if(overrides, [&](const Override& o) {
    if (seen_overrides.emplace(o.prefix, o.key, o.rule).second) return false;
    expired.push_back(o.id);
    return true;
  });
  std::reverse(entries.begin(), entries.end());  // oldest first, as the lists show them
  lists_.replace_all(std::move(entries));
  overrides_.replace_all(std::move(overrides));
  if (expired.size() > 2) send(std::move(expired), kRecords, kTimeout, [](RedisValue) {});
  if (damaged > 0 && options_.log) {
    options_.log("warn", fmt::format("admin: {} stored record(s) could not be read", damaged));
  }
  std::lock_guard lock(mu_);
  applied_ = v;
  while (!pending_.empty() && pending_.front().first <= v) pending_.pop_front();
}

bool RedisFleet::apply_one(const std::string& id) {
  const RedisValue got = call(redis_, {"HGET", kRecords, id}, kRecords);
  if (got.type == RedisValue::Type::kNil) {
    lists_.erase_id(id);
    overrides_.remove(id);
    return true;
  }
  if (got.type != RedisValue::Type::kString) return false;
  auto parsed = parse_record(got.text);
  if (!parsed) return false;
  if (auto* e = std::get_if<ListEntry>(&*parsed)) {
    lists_.put(std::move(*e));
    return true;
  }
  auto built = overrides_.build(std::move(std::get<Override>(*parsed)));
  if (!built) return false;
  overrides_.put(std::move(*built));
  return true;
}

void RedisFleet::publish_report() {
  const std::string report = options_.report ? options_.report() : std::string("{}");
  const std::int64_t now = wall_ms();
  const std::string key = kReportPrefix + options_.instance_id;
  send({"SET", key, report, "PX", std::to_string(options_.report_ttl.count())}, key, kTimeout,
       [](RedisValue) {});
  send({"ZADD", kInstances, std::to_string(now), options_.instance_id}, kInstances, kTimeout,
       [](RedisValue) {});
  const std::string oldest = std::to_string(now - options_.report_ttl.count());
  send({"ZREMRANGEBYSCORE", kInstances, "-inf", "(" + oldest}, kInstances, kTimeout,
       [](RedisValue) {});
  const RedisValue ids = call(redis_, {"ZRANGEBYSCORE", kInstances, oldest, "+inf"}, kInstances);
  std::vector<std::string> reports;
  if (ids.type == RedisValue::Type::kArray && !ids.elements.empty()) {
    std::vector<std::string> get = {"MGET"};
    for (const RedisValue& id : ids.elements) get.push_back(kReportPrefix + id.text);
    const RedisValue values = call(redis_, std::move(get), kInstances);
    if (values.type == RedisValue::Type::kArray) {
      for (const RedisValue& r : values.elements) {
        if (r.type == RedisValue::Type::kString) reports.push_back(r.text);
      }
    }
  }
  if (reports.empty()) reports.push_back(report);  // Redis unreachable: at least this instance
  std::lock_guard lock(mu_);
  reports_ = std::move(reports);
}

void RedisFleet::run() {
  auto next_poll = std::chrono::steady_clock::now();
  auto next_report = next_poll;
  for (;;) {
    bool reload_now = false;
    {
      std::unique_lock lock(mu_);
      wake_.wait_until(lock, std::min(next_poll, next_report), [&] {
        return stopping_ || reload_wanted_ || announced_ > applied_ || !pending_.empty();
      });
      if (stopping_) return;
      reload_now = reload_wanted_ || announced_ > applied_;
      // One changed record at a time, while nothing asks for a reload.
      while (!reload_now && !pending_.empty()) {
        const auto [version, id] = pending_.front();
        lock.unlock();
        const bool applied = apply_one(id);
        lock.lock();
        if (!pending_.empty() && pending_.front().first == version) pending_.pop_front();
        if (applied && applied_ == version - 1) {
          applied_ = version;
        } else {
          reload_wanted_ = true;
          reload_now = true;
        }
      }
    }
    const auto now = std::chrono::steady_clock::now();
    if (!reload_now && now >= next_poll) {
      const RedisValue version = call(redis_, {"GET", kVersion}, kVersion);
      const std::int64_t v = version_of(version);
      std::lock_guard lock(mu_);
      reload_now = version.ok() && v != applied_ && pending_.empty();
    }
    if (now >= next_poll) next_poll = now + options_.poll_every;
    if (reload_now) {
      {
        std::lock_guard lock(mu_);
        reload_wanted_ = false;  // a failed reload waits for the next poll, not a spin
      }
      reload();
      // Redis unreachable: try again at the next poll rather than spin.
      std::lock_guard lock(mu_);
      if (announced_ > applied_) announced_ = applied_;
    }
    if (std::chrono::steady_clock::now() >= next_report) {
      publish_report();
      next_report = std::chrono::steady_clock::now() + options_.report_every;
    }
  }
}

}  // namespace floodgate::admin
