#include "floodgate/memory_store.h"

#include <algorithm>
#include <bit>
#include <mutex>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "core/decide.h"
#include "core/key_hash.h"

namespace floodgate {
namespace {

using core::CompactState;
using core::KeyHash;
using core::KeyHashHasher;
using core::SlidingLog;

// A shard sweeps itself when it has doubled since its last sweep, but never below this size.
constexpr std::size_t kMinLazySweep = 1024;
// When full, a shard evicts this fraction (1/8) of its keys, so the work is O(1) amortized.
constexpr std::size_t kEvictDivisor = 8;

struct Slot {
  CompactState state;
  Micros fresh_at;  // from then on, `state` equals a fresh key's and may be dropped
};

struct LogSlot {
  SlidingLog log;
  Micros fresh_at;
};

}  // namespace

// 64 bytes: a cache line on the machines we run on; shards never share one.
struct alignas(64) MemoryStore::Shard {
  std::mutex mu;
  boost::unordered_flat_map<KeyHash, Slot, KeyHashHasher> slots;
  boost::unordered_flat_map<KeyHash, LogSlot, KeyHashHasher> logs;
  std::size_t next_lazy_sweep = kMinLazySweep;
  std::uint64_t evicted_fresh = 0;
  std::uint64_t evicted_for_capacity = 0;

  std::size_t size() const { return slots.size() + logs.size(); }

  // Drops fresh-equivalent keys. Requires mu.
  std::size_t sweep(Micros now) {
    const std::size_t dropped =
        boost::unordered::erase_if(slots, [now](const auto& kv) { return kv.second.fresh_at <= now; }) +
        boost::unordered::erase_if(logs, [now](const auto& kv) { return kv.second.fresh_at <= now; });
    evicted_fresh += dropped;
    next_lazy_sweep = std::max(kMinLazySweep, 2 * size());
    return dropped;
  }

  // Makes room for one more key under `max_keys`. Requires mu.
  void make_room(Micros now, std::size_t max_keys) {
    if (size() >= next_lazy_sweep || size() >= max_keys) sweep(now);
    if (size() < max_keys) return;
    // Still full: evict the keys nearest to becoming fresh. Rare, so a scratch vector is fine.
    std::vector<Micros> fresh;
    fresh.reserve(size());
    for (const auto& kv : slots) fresh.push_back(kv.second.fresh_at);
    for (const auto& kv : logs) fresh.push_back(kv.second.fresh_at);
    const std::size_t n = std::max<std::size_t>(1, fresh.size() / kEvictDivisor);
    std::nth_element(fresh.begin(), fresh.begin() + static_cast<std::ptrdiff_t>(n - 1), fresh.end());
    const Micros threshold = fresh[n - 1];
    std::size_t budget = n;  // ties at the threshold: stop after n
    auto evict = [&](const auto& kv) { return kv.second.fresh_at <= threshold && budget > 0 && budget-- > 0; };
    evicted_for_capacity += boost::unordered::erase_if(slots, evict);
    evicted_for_capacity += boost::unordered::erase_if(logs, evict);
  }
};

std::string_view to_string(StoreStatus status) {
  switch (status) {
    case StoreStatus::kOk:
      return "ok";
    case StoreStatus::kUnavailable:
      return "unavailable";
    case StoreStatus::kTimeout:
      return "timeout";
  }
  return "unknown";
}

MemoryStore::MemoryStore(const Clock& clock, MemoryStoreOptions options)
    : clock_(clock),
      shard_mask_(std::bit_ceil(std::max<std::size_t>(1, options.shards)) - 1),
      keys_per_shard_(std::max<std::size_t>(
          1, (options.max_keys + shard_mask_) / (shard_mask_ + 1))),
      shards_(std::make_unique<Shard[]>(shard_mask_ + 1)) {}

MemoryStore::~MemoryStore() = default;

Decision MemoryStore::check(std::string_view key, const Policy& policy, std::uint64_t cost) {
  const KeyHash hash = core::hash_key(policy.algorithm(), key);
  Shard& shard = shards_[hash.high & shard_mask_];
  const Micros now = clock_.now();
  std::lock_guard lock(shard.mu);

  if (policy.algorithm() == Algorithm::kSlidingWindowLog) {
    auto it = shard.logs.find(hash);
    if (it == shard.logs.end()) {
      if (cost == 0 || cost > policy.limit()) {  // nothing to record: answer from a fresh log
        SlidingLog fresh;
        return core::decide(policy, fresh, now, cost);
      }
      shard.make_room(now, keys_per_shard_);
      it = shard.logs.try_emplace(hash).first;
    }
    Decision d = core::decide(policy, it->second.log, now, cost);
    it->second.fresh_at = core::fresh_at(policy, it->second.log);
    if (it->second.log.empty()) shard.logs.erase(it);
    return d;
  }

  auto it = shard.slots.find(hash);
  CompactState state = it != shard.slots.end() ? it->second.state : CompactState{};
  Decision d = core::decide(policy, state, now, cost);
  if (it != shard.slots.end()) {
    if (state.is_fresh()) {
      shard.slots.erase(it);
    } else {
      it->second = {state, core::fresh_at(policy, state)};
    }
  } else if (!state.is_fresh()) {
    shard.make_room(now, keys_per_shard_);
    shard.slots.emplace(hash, Slot{state, core::fresh_at(policy, state)});
  }
  return d;
}

void MemoryStore::check(std::span<const CheckOp> ops, std::span<Outcome> outcomes,
                        Completion& done) {
  for (std::size_t i = 0; i < ops.size(); ++i) {
    outcomes[i] = {StoreStatus::kOk, check(ops[i].key, *ops[i].policy, ops[i].cost)};
  }
  done.complete();
}

std::size_t MemoryStore::sweep() {
  const Micros now = clock_.now();
  std::size_t dropped = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    dropped += shards_[i].sweep(now);
  }
  return dropped;
}

MemoryStoreStats MemoryStore::stats() const {
  MemoryStoreStats s;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    s.keys += shards_[i].size();
    s.evicted_fresh += shards_[i].evicted_fresh;
    s.evicted_for_capacity += shards_[i].evicted_for_capacity;
  }
  return s;
}

}  // namespace floodgate
