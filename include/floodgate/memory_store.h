// File: floodgate/memory_store.h
//
// MemoryStore: the embedded store. Keys are spread over power-of-two shards by a 128-bit hash of
// (algorithm, key); each shard is a flat hash map. A check of a key the shard already holds takes
// the shard's lock shared (a "big reader" lock whose readers write only their own cache line) and
// the key's own spin lock, so threads working on different keys never write a cache line another
// thread reads. Exact within one process: checks of one key are serialized by its lock.
//
// Memory is bounded two ways:
//   - a key whose state has become equal to a fresh key's (bucket full again, window over) is
//     dropped (to the second): when a shard grows to twice its size at its last sweep, and by
//     sweep(), which a service calls on a timer;
//   - a shard never holds more than max_keys / shards keys. When a new key would exceed that, the
//     shard first drops fresh-equivalent keys, then evicts the eighth of its keys that were
//     closest to becoming fresh anyway (Redis' volatile-ttl idea), counting them in
//     stats().evicted_for_capacity. An evicted key starts over as fresh: under memory pressure the
//     store forgets the state that matters least rather than refusing new keys.
//
// Example:
//   floodgate::SystemClock clock;
//   floodgate::MemoryStore store(clock, {.max_keys = 100'000});
//   auto policy = floodgate::Policy::fixed_window(100, std::chrono::minutes(1)).value();
//   floodgate::Decision d = store.check("user:42", policy);
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "floodgate/clock.h"
#include "floodgate/decision.h"
#include "floodgate/policy.h"
#include "floodgate/store.h"

namespace floodgate {
namespace core {
struct KeyHash;
}  // namespace core

struct MemoryStoreOptions {
  std::size_t max_keys = 1'000'000;
  std::size_t shards = 64;  // rounded up to a power of two
};

struct MemoryStoreStats {
  std::size_t keys = 0;
  std::uint64_t evicted_fresh = 0;         // dropped because their state equalled a fresh key's
  std::uint64_t evicted_for_capacity = 0;  // dropped early to respect max_keys
};

class MemoryStore final : public Store {
 public:
  // `clock` is borrowed and must outlive the store.
  explicit MemoryStore(const Clock& clock, MemoryStoreOptions options = {});
  ~MemoryStore() override;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  // check(): synchronous single check. Thread-safe; O(1) expected; no allocation unless the key is
  // new (or a sliding log grows).
  Decision check(std::string_view key, const Policy& policy, std::uint64_t cost = 1);

  // Store: always completes inline.
  void check(std::span<const CheckOp> ops, std::span<Outcome> outcomes, Completion& done) override;
  std::string_view name() const override { return "memory"; }
  const Clock& clock() const { return clock_; }
  // reset(): drops the key's state under every algorithm; completes inline.
  void reset(std::string_view key, std::function<void(StoreStatus)> done) override;
  // erase(): the same, synchronously; returns how many states were dropped.
  std::size_t erase(std::string_view key);

  // sweep(): drops every key whose state equals a fresh key's; returns how many. Locks one shard at
  // a time, O(keys) in all. Call it periodically (a service does, every few seconds).
  std::size_t sweep();

  // stats(): a consistent-enough snapshot (shards are read one after another).
  MemoryStoreStats stats() const;

 private:
  struct Shard;

  template <class State>
  Decision check_in(Shard& shard, const core::KeyHash& hash, const Policy& policy, Micros now,
                    std::uint64_t cost);

  const Clock& clock_;
  std::size_t shard_mask_;
  std::size_t keys_per_shard_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace floodgate
