// File: admin/top_keys.h
//
// The top limited keys over the last few minutes (GET /admin/stats, the dashboard), in memory that
// is fixed when the process starts however many distinct keys are denied: an attack that spreads
// over millions of keys must not grow the process.
//
// SpaceSaving is Metwally, Agrawal and El Abbadi's Space-Saving summary ("Efficient Computation of
// Frequent and Top-k Elements in Data Streams", ICDT 2005) with weighted updates: `capacity`
// counters; a key already tracked adds to its counter; a new key takes a free counter, or, when
// all are taken, the counter with the smallest count, whose count it inherits (and records as its
// error). For every tracked key, count - error <= true count <= count; a key whose true count
// exceeds total / capacity is always tracked; while no more than `capacity` distinct keys have
// been added, every count is exact (error 0).
//
// Data structure: a binary min-heap of (count, counter) with each counter's heap position kept in
// the counter, plus an open-addressing hash index (linear probing, at most half full, backward-
// shift deletion, so no tombstones) from key to counter. All three arrays are sized once, in the
// constructor. add() is O(log capacity) and never allocates. The alternative, Metwally's
// stream-summary (a doubly linked list of count buckets), is O(1) only for unit increments: a
// weighted add may skip over many buckets, and its per-bucket nodes are either allocated on the
// hot path or pooled with pointers that cost as much memory as the heap. The heap's log factor is
// ~12 levels at 4096 counters, and a hit on a heavy key (the common case in a skewed stream) sifts
// down only as far as its count crosses others.
//
// Keys are stored in fixed slots of kMaxKeyBytes: a longer key is truncated (at a UTF-8 character
// boundary, so the reported key stays valid text) and is counted as its truncated prefix: two keys
// that share their first kMaxKeyBytes bytes are one key to the sketch. Truncating, rather than
// hashing, keeps what the operator sees readable; keys that long are rare in rate limiting.
//
// TopKeys is SpaceSaving made safe for the hot path's denied decisions and bounded in time: a key's
// hash picks one of `shards` shards (a key always lands in the same shard, so the guarantees hold
// per shard, and shards never share a key), each with its own std::mutex, so threads denying
// different keys rarely wait for each other. Each shard keeps a ring of generations (one
// SpaceSaving each, `window / generations` long); a record goes to the current generation, and a
// generation that ended `window` ago or earlier is cleared when its slot is next needed. top()
// sums the live generations per shard and takes the largest across shards.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "floodgate/clock.h"

namespace floodgate::admin {

// kMaxKeyBytes: the longest key the sketch stores; longer keys are truncated (see file comment).
inline constexpr std::size_t kMaxKeyBytes = 128;

// TopEntry: one key of a top list. `count` is an upper bound of the key's true count and
// `count - error` a lower bound; error 0 means the count is exact.
struct TopEntry {
  std::string key;
  std::uint64_t count = 0;
  std::uint64_t error = 0;

  friend bool operator==(const TopEntry&, const TopEntry&) = default;
};

// SpaceSaving: a heavy-hitter summary of `capacity` counters (see file comment).
//
// Thread-safety: none; a caller serializes access (TopKeys does, per shard).
class SpaceSaving {
 public:
  // `capacity`: the number of counters, from 1 to kMaxCapacity (values outside are clamped).
  static constexpr std::size_t kMaxCapacity = std::size_t{1} << 30;
  explicit SpaceSaving(std::size_t capacity);

  // add(): counts `weight` occurrences of `key`. O(log capacity); never allocates. A weight of 0
  // changes nothing. Counts saturate at 2^64 - 1.
  void add(std::string_view key, std::uint64_t weight = 1);

  // top(): the `n` largest counters, by count descending, ties by key ascending.
  std::vector<TopEntry> top(std::size_t n) const;

  // clear(): forgets every key; keeps the memory.
  void clear();

  std::size_t capacity() const { return slots_.size(); }
  std::size_t size() const { return size_; }  // counters in use
  bool full() const { return size_ == slots_.size(); }
  // min_count(): the smallest count when full (an upper bound of the true count of any key not
  // tracked), else 0 (a key not tracked was never added).
  std::uint64_t min_count() const { return full() ? heap_[0].count : 0; }
  // total(): the sum of every weight added since the last clear().
  std::uint64_t total() const { return total_; }

  // memory_bytes(): every byte this summary holds, fixed at construction: the object, and
  // capacity × (counter with its key slot + heap entry) + the hash index.
  std::size_t memory_bytes() const;

  // hash(): the hash add() indexes `key` by (XXH3-64 of the key as stored, i.e. truncated).
  static std::uint64_t hash(std::string_view key);
  // stored_key(): `key` as the sketch stores and reports it (truncated to kMaxKeyBytes).
  static std::string_view stored_key(std::string_view key);

 private:
  friend class TopKeys;          // hashes once: for its shard and for this index
  friend class CombinedSummary;  // reads the counters in place

  static constexpr std::uint32_t kEmpty = 0xFFFF'FFFF;

  struct Slot {
    std::uint64_t hash = 0;
    std::uint64_t error = 0;
    std::uint32_t heap_pos = 0;
    std::uint8_t key_len = 0;
    char key[kMaxKeyBytes];

    std::string_view view() const { return {key, key_len}; }
  };
  struct HeapEntry {
    std::uint64_t count;
    std::uint32_t slot;
  };

  // add_stored(): add() for a key already truncated by stored_key() whose hash() is `h`.
  void add_stored(std::string_view key, std::uint64_t h, std::uint64_t weight);
  std::uint32_t find(std::string_view key, std::uint64_t h) const;  // a slot, or kEmpty
  // assign(): slot `s` now counts `key` (stored, hash `h`) with `error`; indexes it.
  void assign(std::uint32_t s, std::string_view key, std::uint64_t h, std::uint64_t error);
  void index_insert(std::uint32_t slot);
  void index_erase(std::uint32_t slot);
  void sift_up(std::size_t pos);
  void sift_down(std::size_t pos);
  void place(std::size_t pos, HeapEntry e);  // heap_[pos] = e, and the slot learns its position

  std::vector<Slot> slots_;
  std::vector<HeapEntry> heap_;       // min-heap by count; heap_[i].slot's heap_pos == i
  std::vector<std::uint32_t> index_;  // slot numbers; size a power of two >= 2 × capacity
  std::size_t index_mask_ = 0;
  std::size_t size_ = 0;
  std::uint64_t total_ = 0;
};

// CombinedSummary: the sum of several SpaceSaving summaries of the same stream cut in parts (the
// generations of one shard), with Space-Saving's bounds kept: a key absent from a full part may
// have occurred there up to that part's min_count() times, which is added to its count and error.
// Summaries of disjoint key sets (different shards) are combined by concatenating their tops, not
// with this, which would loosen every bound by the other parts' minimums.
//
// Memory: one map entry per distinct tracked key added (at most the sum of the capacities).
class CombinedSummary {
 public:
  void add(const SpaceSaving& part);
  // top(): the `n` largest keys by count descending, ties by key ascending.
  std::vector<TopEntry> top(std::size_t n) const;

 private:
  struct Sum {
    std::uint64_t count = 0;
    std::uint64_t error = 0;
    std::uint64_t floor_where_present = 0;  // the parts' min_count() where this key was tracked
  };
  std::unordered_map<std::string, Sum> sums_;
  std::uint64_t floor_total_ = 0;  // sum of every part's min_count()
};

// TopKeys: the most recorded keys over the last `window`, for the hot path's denied decisions.
//
// `capacity` counters per generation are split evenly across the shards (each shard's summary
// holds ceil(capacity / shards)). A shard keeps generations + 1 generations, so that top() always
// covers the whole window: it counts the records of the last `window` and at most one generation
// (window / generations) more. Time comes from `clock`; a clock that steps backwards keeps
// recording into the newest generation a shard has seen.
//
// Thread-safety: every member may be called from any thread. record() locks one shard; top() locks
// each shard in turn while it sums that shard's generations.
class TopKeys {
 public:
  TopKeys(const Clock& clock, std::size_t capacity = 4096, Micros window = std::chrono::minutes(5),
          int generations = 5, int shards = 8);
  ~TopKeys();
  TopKeys(const TopKeys&) = delete;
  TopKeys& operator=(const TopKeys&) = delete;

  // record(): counts `weight` occurrences of `key` now. O(log(capacity / shards)), no allocation.
  void record(std::string_view key, std::uint64_t weight = 1);

  // top(): the `n` keys with the largest counts over the window, by count descending, ties by key
  // ascending. Allocates its result and a transient map of at most the tracked keys of one shard.
  std::vector<TopEntry> top(std::size_t n) const;

  // memory_bytes(): every byte held between calls, fixed at construction whatever is recorded.
  std::size_t memory_bytes() const { return memory_bytes_; }

  Micros window() const { return window_; }

 private:
  struct Shard;

  std::int64_t generation_at(Micros t) const;

  const Clock& clock_;
  const Micros window_;
  const std::int64_t generations_;    // the window's generations; each ring holds one more
  const std::int64_t generation_us_;  // window / generations, at least 1
  std::vector<std::unique_ptr<Shard>> shards_;
  std::size_t memory_bytes_ = 0;  // computed once: nothing grows after construction
};

}  // namespace floodgate::admin
