#include "floodgate/memory_store.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <mutex>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "core/decide.h"
#include "core/key_hash.h"
#include "store/memory/big_reader_lock.h"

namespace floodgate {
namespace {

using core::CompactState;
using core::KeyHash;
using core::KeyHashHasher;
using core::SlidingLog;
using store::BigReaderLock;
using store::ExclusiveLock;
using store::SharedLock;
using store::SpinLock;

// A shard sweeps itself when it has doubled since its last sweep, but never below this size.
constexpr std::size_t kMinLazySweep = 1024;
// When full, a shard evicts this fraction (1/8) of its keys, so the work is O(1) amortized.
constexpr std::size_t kEvictDivisor = 8;

// Freshness is kept in whole seconds (rounded up) to keep an entry at 40 bytes with its key.
using Seconds = std::uint32_t;
constexpr Seconds kFreshNow = 0;
constexpr Seconds kFreshNever = std::numeric_limits<Seconds>::max();

// fresh_seconds(): when the state a decision left behind equals a fresh key's (see decide.h).
Seconds fresh_seconds(Micros now, const Decision& d) {
  if (d.reset_after == kNever) return kFreshNever;
  const std::int64_t s = (now.count() + d.reset_after.count() + 999'999) / 1'000'000;
  return static_cast<Seconds>(std::clamp<std::int64_t>(s, 0, kFreshNever - 1));
}

Seconds now_seconds(Micros now) {
  return static_cast<Seconds>(
      std::clamp<std::int64_t>(now.count() / 1'000'000, 0, kFreshNever - 1));
}

bool holds_nothing(const CompactState& s) { return s.is_fresh(); }
bool holds_nothing(const SlidingLog& s) { return s.empty(); }

// Entry: one key's state. `lock` guards `state` and `fresh_at` while the shard is shared.
template <class State>
struct Entry {
  State state;
  Seconds fresh_at = kFreshNow;  // from then on `state` equals a fresh key's and may be dropped
  SpinLock lock;
};

template <class State>
using EntryMap = boost::unordered_flat_map<KeyHash, Entry<State>, KeyHashHasher>;

}  // namespace

// Shard: a map per kind of state. Checks of known keys hold `lock` shared plus the key's own
// SpinLock; inserting a key, sweeping and evicting hold it exclusively.
struct alignas(64) MemoryStore::Shard {
  BigReaderLock lock;
  EntryMap<CompactState> slots;
  EntryMap<SlidingLog> logs;
  std::size_t next_lazy_sweep = kMinLazySweep;
  std::uint64_t evicted_fresh = 0;
  std::uint64_t evicted_for_capacity = 0;

  std::size_t size() const { return slots.size() + logs.size(); }

  // Drops fresh-equivalent keys. Requires `lock` held exclusively.
  std::size_t sweep(Micros now) {
    const Seconds now_s = now_seconds(now);
    auto is_fresh = [now_s](const auto& kv) { return kv.second.fresh_at <= now_s; };
    const std::size_t dropped =
        boost::unordered::erase_if(slots, is_fresh) + boost::unordered::erase_if(logs, is_fresh);
    evicted_fresh += dropped;
    next_lazy_sweep = std::max(kMinLazySweep, 2 * size());
    return dropped;
  }

  // Makes room for one more key under `max_keys`. Requires `lock` held exclusively.
  void make_room(Micros now, std::size_t max_keys) {
    if (size() >= next_lazy_sweep || size() >= max_keys) sweep(now);
    if (size() < max_keys) return;
    // Still full: evict the keys nearest to becoming fresh. Rare, so a scratch vector is fine.
    std::vector<Seconds> fresh;
    fresh.reserve(size());
    for (const auto& kv : slots) fresh.push_back(kv.second.fresh_at);
    for (const auto& kv : logs) fresh.push_back(kv.second.fresh_at);
    const std::size_t n = std::max<std::size_t>(1, fresh.size() / kEvictDivisor);
    std::nth_element(fresh.begin(), fresh.begin() + static_cast<std::ptrdiff_t>(n - 1),
                     fresh.end());
    const Seconds threshold = fresh[n - 1];
    std::size_t budget = n;  // with ties at the threshold, stop after n
    auto evict = [&](const auto& kv) {
      if (kv.second.fresh_at > threshold || budget == 0) return false;
      --budget;
      return true;
    };
    evicted_for_capacity += boost::unordered::erase_if(slots, evict);
    evicted_for_capacity += boost::unordered::erase_if(logs, evict);
  }

  template <class State>
  EntryMap<State>& map_for();
};

template <>
EntryMap<CompactState>& MemoryStore::Shard::map_for<CompactState>() {
  return slots;
}
template <>
EntryMap<SlidingLog>& MemoryStore::Shard::map_for<SlidingLog>() {
  return logs;
}

MemoryStore::MemoryStore(const Clock& clock, MemoryStoreOptions options)
    : clock_(clock),
      shard_mask_(std::bit_ceil(std::max<std::size_t>(1, options.shards)) - 1),
      keys_per_shard_(
          std::max<std::size_t>(1, (options.max_keys + shard_mask_) / (shard_mask_ + 1))),
      shards_(std::make_unique<Shard[]>(shard_mask_ + 1)) {}

MemoryStore::~MemoryStore() = default;

template <class State>
Decision MemoryStore::check_in(Shard& shard, const KeyHash& hash, const Policy& policy, Micros now,
                               std::uint64_t cost) {
  EntryMap<State>& map = shard.map_for<State>();
  {
    // The common case, a key we already hold: the shard stays shared, only the key is locked.
    SharedLock shared(shard.lock);
    auto it = map.find(hash);
    if (it != map.end()) {
      Entry<State>& e = it->second;
      std::lock_guard key_lock(e.lock);
      const Decision d = core::decide(policy, e.state, now, cost);
      e.fresh_at = fresh_seconds(now, d);
      return d;
    }
  }
  // An unknown key: decide on a fresh state, and keep it only if there is something to remember
  // (a peek or a refusal of a fresh key leaves nothing).
  State state{};
  const Decision d = core::decide(policy, state, now, cost);
  if (holds_nothing(state)) return d;

  ExclusiveLock exclusive(shard.lock);
  auto it = map.find(hash);
  if (it != map.end()) {
    // Another thread stored this key since we looked: decide again, on its state.
    Entry<State>& e = it->second;
    const Decision again = core::decide(policy, e.state, now, cost);
    e.fresh_at = fresh_seconds(now, again);
    return again;
  }
  shard.make_room(now, keys_per_shard_);
  map.try_emplace(hash, Entry<State>{std::move(state), fresh_seconds(now, d), {}});
  return d;
}

Decision MemoryStore::check(std::string_view key, const Policy& policy, std::uint64_t cost) {
  const KeyHash hash = core::hash_key(policy.algorithm(), key);
  Shard& shard = shards_[hash.high & shard_mask_];
  const Micros now = clock_.now();
  if (policy.algorithm() == Algorithm::kSlidingWindowLog) {
    return check_in<SlidingLog>(shard, hash, policy, now, cost);
  }
  return check_in<CompactState>(shard, hash, policy, now, cost);
}

void MemoryStore::check(std::span<const CheckOp> ops, std::span<Outcome> outcomes,
                        Completion& done) {
  for (std::size_t i = 0; i < ops.size(); ++i) {
    outcomes[i] = {.status = StoreStatus::kOk,
                   .decision = check(ops[i].key, *ops[i].policy, ops[i].cost)};
  }
  done.complete();
}

std::size_t MemoryStore::erase(std::string_view key) {
  std::size_t dropped = 0;
  for (int a = 0; a < kAlgorithmCount; ++a) {
    const auto algorithm = static_cast<Algorithm>(a);
    const KeyHash hash = core::hash_key(algorithm, key);
    Shard& shard = shards_[hash.high & shard_mask_];
    ExclusiveLock exclusive(shard.lock);
    dropped += algorithm == Algorithm::kSlidingWindowLog ? shard.logs.erase(hash)
                                                         : shard.slots.erase(hash);
  }
  return dropped;
}

void MemoryStore::reset(std::string_view key, std::function<void(StoreStatus)> done) {
  erase(key);
  done(StoreStatus::kOk);
}

std::size_t MemoryStore::sweep() {
  const Micros now = clock_.now();
  std::size_t dropped = 0;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    ExclusiveLock exclusive(shards_[i].lock);
    dropped += shards_[i].sweep(now);
  }
  return dropped;
}

MemoryStoreStats MemoryStore::stats() const {
  MemoryStoreStats s;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    SharedLock shared(shards_[i].lock);
    s.keys += shards_[i].size();
    s.evicted_fresh += shards_[i].evicted_fresh;
    s.evicted_for_capacity += shards_[i].evicted_for_capacity;
  }
  return s;
}

}  // namespace floodgate
