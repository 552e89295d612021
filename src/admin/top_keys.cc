// File: admin/top_keys.cc
//
// Space-Saving on a min-heap with an open-addressing index, and the sharded, generational TopKeys
// around it (see top_keys.h for the why).
#include "admin/top_keys.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <limits>
#include <utility>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/arith.h"

namespace floodgate::admin {
namespace {

static_assert(kMaxKeyBytes <= std::numeric_limits<std::uint8_t>::max(), "key_len is a byte");

constexpr std::uint64_t kCountMax = std::numeric_limits<std::uint64_t>::max();

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > kCountMax - b ? kCountMax : a + b;
}

std::uint64_t hash_stored(std::string_view stored) {
  return XXH3_64bits(stored.data(), stored.size());
}

// The smallest power of two that is at least 2 × capacity: the index stays at most half full, so
// a probe ends after about 1.5 slots on a hit and 2.5 on a miss.
std::size_t index_size_for(std::size_t capacity) {
  std::size_t size = 2;
  while (size < 2 * capacity) size <<= 1;
  return size;
}

// A candidate of a top list before its key is copied out.
struct Ranked {
  std::uint64_t count;
  std::uint64_t error;
  std::string_view key;
};

bool ranks_before(const Ranked& a, const Ranked& b) {
  return a.count != b.count ? a.count > b.count : a.key < b.key;
}

// top_of(): the `n` first of `candidates` by count descending, key ascending, copied out.
std::vector<TopEntry> top_of(std::vector<Ranked>& candidates, std::size_t n) {
  n = std::min(n, candidates.size());
  const auto middle = candidates.begin() + static_cast<std::ptrdiff_t>(n);
  std::partial_sort(candidates.begin(), middle, candidates.end(), ranks_before);
  std::vector<TopEntry> top;
  top.reserve(n);
  for (auto it = candidates.begin(); it != middle; ++it) {
    top.push_back(TopEntry{std::string(it->key), it->count, it->error});
  }
  return top;
}

bool entry_ranks_before(const TopEntry& a, const TopEntry& b) {
  return a.count != b.count ? a.count > b.count : a.key < b.key;
}

}  // namespace

// --- SpaceSaving ---------------------------------------------------------------------------------

SpaceSaving::SpaceSaving(std::size_t capacity)
    : slots_(std::clamp<std::size_t>(capacity, 1, kMaxCapacity)),
      heap_(slots_.size()),
      index_(index_size_for(slots_.size()), kEmpty),
      index_mask_(index_.size() - 1) {}

std::string_view SpaceSaving::stored_key(std::string_view key) {
  if (key.size() <= kMaxKeyBytes) return key;
  // Cut before a UTF-8 continuation byte (10xxxxxx) would split a character: back off to its
  // first byte (at most 3 bytes back; invalid UTF-8 is cut where the backing off stops).
  std::size_t cut = kMaxKeyBytes;
  for (int i = 0; i < 3 && (static_cast<unsigned char>(key[cut]) & 0xC0U) == 0x80U; ++i) --cut;
  return key.substr(0, cut);
}

std::uint64_t SpaceSaving::hash(std::string_view key) { return hash_stored(stored_key(key)); }

void SpaceSaving::add(std::string_view key, std::uint64_t weight) {
  const std::string_view stored = stored_key(key);
  add_stored(stored, hash_stored(stored), weight);
}

void SpaceSaving::add_stored(std::string_view key, std::uint64_t h, std::uint64_t weight) {
  if (weight == 0) return;
  total_ = saturating_add(total_, weight);

  std::uint32_t s = find(key, h);
  if (s != kEmpty) {  // tracked: the common case on a skewed stream
    const std::size_t pos = slots_[s].heap_pos;
    heap_[pos].count = saturating_add(heap_[pos].count, weight);
    sift_down(pos);
    return;
  }

  if (size_ < slots_.size()) {  // a free counter
    s = static_cast<std::uint32_t>(size_);
    const std::size_t pos = size_++;
    assign(s, key, h, 0);
    place(pos, HeapEntry{weight, s});
    sift_up(pos);
    return;
  }
  // Full: the smallest counter changes hands, and its count becomes the new key's error.
  s = heap_[0].slot;
  index_erase(s);
  assign(s, key, h, heap_[0].count);
  heap_[0].count = saturating_add(heap_[0].count, weight);
  sift_down(0);
}

void SpaceSaving::assign(std::uint32_t s, std::string_view key, std::uint64_t h,
                         std::uint64_t error) {
  Slot& slot = slots_[s];
  slot.hash = h;
  slot.error = error;
  slot.key_len = static_cast<std::uint8_t>(key.size());
  if (!key.empty()) std::memcpy(slot.key, key.data(), key.size());  // "" may have no data()
  index_insert(s);
}

std::uint32_t SpaceSaving::find(std::string_view key, std::uint64_t h) const {
  for (std::size_t i = static_cast<std::size_t>(h) & index_mask_;; i = (i + 1) & index_mask_) {
    const std::uint32_t s = index_[i];
    if (s == kEmpty) return kEmpty;
    const Slot& slot = slots_[s];
    if (slot.hash == h && slot.view() == key) return s;
  }
}

void SpaceSaving::index_insert(std::uint32_t slot) {
  std::size_t i = static_cast<std::size_t>(slots_[slot].hash) & index_mask_;
  while (index_[i] != kEmpty) i = (i + 1) & index_mask_;
  index_[i] = slot;
}

void SpaceSaving::index_erase(std::uint32_t slot) {
  std::size_t hole = static_cast<std::size_t>(slots_[slot].hash) & index_mask_;
  while (index_[hole] != slot) hole = (hole + 1) & index_mask_;
  // Backward-shift deletion: pull later entries of the probe run into the hole when the hole lies
  // between their home and their place, so every lookup still finds them without tombstones.
  for (std::size_t j = (hole + 1) & index_mask_; index_[j] != kEmpty; j = (j + 1) & index_mask_) {
    const std::size_t home = static_cast<std::size_t>(slots_[index_[j]].hash) & index_mask_;
    const bool home_after_hole =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_after_hole) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kEmpty;
}

void SpaceSaving::place(std::size_t pos, HeapEntry e) {
  heap_[pos] = e;
  slots_[e.slot].heap_pos = static_cast<std::uint32_t>(pos);
}

void SpaceSaving::sift_up(std::size_t pos) {
  const HeapEntry e = heap_[pos];
  while (pos > 0) {
    const std::size_t parent = (pos - 1) / 2;
    if (heap_[parent].count <= e.count) break;
    place(pos, heap_[parent]);
    pos = parent;
  }
  place(pos, e);
}

void SpaceSaving::sift_down(std::size_t pos) {
  const HeapEntry e = heap_[pos];
  for (;;) {
    std::size_t child = 2 * pos + 1;
    if (child >= size_) break;
    if (child + 1 < size_ && heap_[child + 1].count < heap_[child].count) ++child;
    if (heap_[child].count >= e.count) break;
    place(pos, heap_[child]);
    pos = child;
  }
  place(pos, e);
}

std::vector<TopEntry> SpaceSaving::top(std::size_t n) const {
  std::vector<Ranked> candidates;
  candidates.reserve(size_);
  for (std::size_t pos = 0; pos < size_; ++pos) {
    const Slot& slot = slots_[heap_[pos].slot];
    candidates.push_back(Ranked{heap_[pos].count, slot.error, slot.view()});
  }
  return top_of(candidates, n);
}

void SpaceSaving::clear() {
  std::fill(index_.begin(), index_.end(), kEmpty);
  size_ = 0;
  total_ = 0;
}

std::size_t SpaceSaving::memory_bytes() const {
  return sizeof(*this) + slots_.capacity() * sizeof(Slot) + heap_.capacity() * sizeof(HeapEntry) +
         index_.capacity() * sizeof(std::uint32_t);
}

// --- CombinedSummary -----------------------------------------------------------------------------

void CombinedSummary::add(const SpaceSaving& part) {
  const std::uint64_t part_floor = part.min_count();
  floor_total_ = saturating_add(floor_total_, part_floor);
  for (std::size_t pos = 0; pos < part.size_; ++pos) {
    const SpaceSaving::HeapEntry& e = part.heap_[pos];
    const SpaceSaving::Slot& slot = part.slots_[e.slot];
    Sum& sum = sums_[std::string(slot.view())];
    sum.count = saturating_add(sum.count, e.count);
    sum.error = saturating_add(sum.error, slot.error);
    sum.floor_where_present = saturating_add(sum.floor_where_present, part_floor);
  }
}

std::vector<TopEntry> CombinedSummary::top(std::size_t n) const {
  std::vector<Ranked> candidates;
  candidates.reserve(sums_.size());
  for (const auto& [key, sum] : sums_) {
    // Where the key was not tracked, it may have occurred up to that part's smallest count.
    const std::uint64_t absent = floor_total_ - std::min(floor_total_, sum.floor_where_present);
    candidates.push_back(
        Ranked{saturating_add(sum.count, absent), saturating_add(sum.error, absent), key});
  }
  return top_of(candidates, n);
}

// --- TopKeys -------------------------------------------------------------------------------------

namespace {
constexpr std::int64_t kNoGeneration = std::numeric_limits<std::int64_t>::min();
}  // namespace

struct alignas(64) TopKeys::Shard {  // one cache line apart: shards' mutexes do not false-share
  struct Generation {
    std::int64_t number = kNoGeneration;  // time / generation length; kNoGeneration: never used
    SpaceSaving summary;
  };

  Shard(std::size_t ring_size, std::size_t capacity) {
    ring.reserve(ring_size);
    for (std::size_t i = 0; i < ring_size; ++i)
      ring.push_back(Generation{kNoGeneration, SpaceSaving(capacity)});
  }

  std::mutex mu;
  std::int64_t newest = kNoGeneration;  // the newest generation recorded into (clock steps back)
  std::vector<Generation> ring;         // generation g lives at g mod ring.size()
};

TopKeys::TopKeys(const Clock& clock, std::size_t capacity, Micros window, int generations,
                 int shards)
    : clock_(clock),
      window_(std::max(window, Micros{1})),
      generations_(std::max(generations, 1)),
      generation_us_(std::max<std::int64_t>(window_.count() / generations_, 1)) {
  const auto shard_count = static_cast<std::size_t>(std::max(shards, 1));
  const std::size_t per_shard =
      std::max<std::size_t>((capacity + shard_count - 1) / shard_count, 1);
  const auto ring_size = static_cast<std::size_t>(generations_ + 1);
  shards_.reserve(shard_count);
  memory_bytes_ = sizeof(*this) + shard_count * sizeof(std::unique_ptr<Shard>);
  for (std::size_t i = 0; i < shard_count; ++i) {
    shards_.push_back(std::make_unique<Shard>(ring_size, per_shard));
    const Shard& shard = *shards_.back();
    memory_bytes_ += sizeof(Shard) + shard.ring.capacity() * sizeof(Shard::Generation);
    for (const Shard::Generation& g : shard.ring) {
      memory_bytes_ += g.summary.memory_bytes() - sizeof(SpaceSaving);  // beyond the object
    }
  }
}

TopKeys::~TopKeys() = default;

std::int64_t TopKeys::generation_at(Micros t) const {
  return core::floor_div(t.count(), generation_us_);
}

void TopKeys::record(std::string_view key, std::uint64_t weight) {
  if (weight == 0) return;
  const std::string_view stored = SpaceSaving::stored_key(key);
  const std::uint64_t h = hash_stored(stored);
  // The hash's high half picks the shard (multiply-shift, no modulo); its low bits index the
  // shard's table, so the two choices stay independent.
  const std::size_t shard_index = static_cast<std::size_t>(((h >> 32) * shards_.size()) >> 32);
  Shard& shard = *shards_[shard_index];
  const std::int64_t now = generation_at(clock_.now());

  std::lock_guard lock(shard.mu);
  const std::int64_t current = std::max(now, shard.newest);
  shard.newest = current;
  const auto ring_size = static_cast<std::int64_t>(shard.ring.size());
  Shard::Generation& g =
      shard.ring[static_cast<std::size_t>((current % ring_size + ring_size) % ring_size)];
  if (g.number != current) {  // older than the window: this slot starts over
    g.summary.clear();
    g.number = current;
  }
  g.summary.add_stored(stored, h, weight);
}

std::vector<TopEntry> TopKeys::top(std::size_t n) const {
  const std::int64_t now = generation_at(clock_.now());
  std::vector<TopEntry> result;
  for (const auto& shard_ptr : shards_) {
    Shard& shard = *shard_ptr;
    CombinedSummary combined;
    {
      std::lock_guard lock(shard.mu);
      // Live: the current generation and the `generations_` before it, the oldest of which still
      // overlaps [now - window, now].
      const std::int64_t oldest = std::max(now, shard.newest) - generations_;
      for (const Shard::Generation& g : shard.ring) {
        if (g.number != kNoGeneration && g.number >= oldest && g.summary.size() > 0) {
          combined.add(g.summary);
        }
      }
    }
    // Shards hold disjoint keys: the global top n is among the shards' own tops.
    std::vector<TopEntry> part = combined.top(n);
    std::move(part.begin(), part.end(), std::back_inserter(result));
  }
  const std::size_t kept = std::min(n, result.size());
  const auto middle = result.begin() + static_cast<std::ptrdiff_t>(kept);
  std::partial_sort(result.begin(), middle, result.end(), entry_ranks_before);
  result.erase(middle, result.end());
  return result;
}

}  // namespace floodgate::admin
