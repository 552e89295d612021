// File: tests/unit/admin/top_keys_test.cc
//
// The top limited keys: Space-Saving's promises (exact while the keys fit, bounds otherwise, the
// true top 10 of a Zipf stream), the 5-minute window on simulated time, fixed memory, and
// TopKeysConcurrency (threads recording at once), which the tsan preset runs under
// ThreadSanitizer.
#include "admin/top_keys.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <gtest/gtest.h>

namespace floodgate::admin {

// How GoogleTest shows a TopEntry in a failure (found by argument-dependent lookup).
void PrintTo(const TopEntry& e, std::ostream* os) {
  *os << "{" << e.key << ", count " << e.count << ", error " << e.error << "}";
}

namespace {

using namespace std::chrono_literals;

// 2027-01-15T00:00:00Z: on a minute boundary, so generation boundaries fall on whole minutes.
constexpr Micros kStart = std::chrono::hours(24) * 20833;

// Zipf(s) over ranks 0..keys-1 (rank 0 the most frequent), by inverse-CDF lookup in a table.
class Zipf {
 public:
  Zipf(std::size_t keys, double s) : cdf_(keys) {
    double sum = 0;
    for (std::size_t i = 0; i < keys; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf_[i] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }

  std::size_t operator()(std::mt19937_64& rng) const {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    return std::min(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1);
  }

 private:
  std::vector<double> cdf_;
};

std::vector<std::string> key_names(std::size_t n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (std::size_t i = 0; i < n; ++i) names.push_back("key:" + std::to_string(i + 1));
  return names;
}

// exact_top(): the `n` largest of exact counts, ordered as the sketch orders (count desc, key asc).
std::vector<TopEntry> exact_top(const std::unordered_map<std::string, std::uint64_t>& counts,
                                std::size_t n) {
  std::vector<TopEntry> all;
  for (const auto& [key, count] : counts) all.push_back(TopEntry{key, count, 0});
  std::sort(all.begin(), all.end(), [](const TopEntry& a, const TopEntry& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  all.resize(std::min(n, all.size()));
  return all;
}

// --- SpaceSaving ---------------------------------------------------------------------------------

TEST(SpaceSaving, CountsAreExactWhileTheDistinctKeysFitTheCapacity) {
  SpaceSaving sketch(100);
  std::unordered_map<std::string, std::uint64_t> truth;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    for (int j = 0; j <= i; ++j) sketch.add(key);  // k0 once ... k99 100 times
    sketch.add(key, 7);
    truth[key] = static_cast<std::uint64_t>(i) + 1 + 7;
  }
  EXPECT_TRUE(sketch.full());
  EXPECT_EQ(sketch.total(), 5050u + 700u);
  const std::vector<TopEntry> top = sketch.top(1000);
  EXPECT_EQ(top, exact_top(truth, 1000));  // every key, exact counts, error 0
  EXPECT_EQ(sketch.top(2), (std::vector<TopEntry>{{"k99", 107, 0}, {"k98", 106, 0}}));
}

TEST(SpaceSaving, OrdersByCountThenKeyAndIgnoresZeroWeights) {
  SpaceSaving sketch(8);
  sketch.add("b", 5);
  sketch.add("a", 5);
  sketch.add("c", 7);
  sketch.add("d", 0);
  EXPECT_EQ(sketch.size(), 3u);
  EXPECT_EQ(sketch.top(10), (std::vector<TopEntry>{{"c", 7, 0}, {"a", 5, 0}, {"b", 5, 0}}));
  EXPECT_TRUE(sketch.top(0).empty());
}

TEST(SpaceSaving, ANewKeyTakesTheSmallestCounterAndItsCountAsError) {
  SpaceSaving sketch(2);
  sketch.add("heavy", 10);
  sketch.add("light", 3);
  sketch.add("new", 1);  // replaces "light": count 3 + 1, of which 3 may not be its own
  EXPECT_EQ(sketch.top(2), (std::vector<TopEntry>{{"heavy", 10, 0}, {"new", 4, 3}}));
  EXPECT_EQ(sketch.min_count(), 4u);
  sketch.clear();
  EXPECT_EQ(sketch.size(), 0u);
  EXPECT_EQ(sketch.min_count(), 0u);
  sketch.add("light");
  EXPECT_EQ(sketch.top(5), (std::vector<TopEntry>{{"light", 1, 0}}));
}

TEST(SpaceSaving, BoundsHoldOnARandomStream) {
  constexpr std::size_t kCapacity = 64;
  SpaceSaving sketch(kCapacity);
  std::unordered_map<std::string, std::uint64_t> truth;
  std::mt19937_64 rng(42);
  std::uint64_t total = 0;
  for (int i = 0; i < 50'000; ++i) {
    // A few heavy keys over a wide uniform background, weights 1 to 3.
    const std::uint64_t r = rng();
    const std::string key =
        r % 4 == 0 ? "heavy" + std::to_string(r % 5) : "k" + std::to_string(r % 997);
    const std::uint64_t weight = 1 + (r >> 32) % 3;
    sketch.add(key, weight);
    truth[key] += weight;
    total += weight;
  }
  EXPECT_EQ(sketch.total(), total);
  const std::vector<TopEntry> tracked = sketch.top(kCapacity);
  ASSERT_EQ(tracked.size(), kCapacity);
  std::uint64_t counted = 0;
  for (const TopEntry& e : tracked) {
    const std::uint64_t true_count = truth.at(e.key);
    EXPECT_GE(e.count, true_count) << e.key;
    EXPECT_LE(e.count - e.error, true_count) << e.key;
    counted += e.count;
  }
  EXPECT_EQ(counted, total);  // every weight lands in exactly one counter
  // A key above total / capacity is always tracked.
  for (const auto& [key, count] : truth) {
    if (count <= total / kCapacity) continue;
    EXPECT_TRUE(std::any_of(tracked.begin(), tracked.end(), [&](const TopEntry& e) {
      return e.key == key;
    })) << key;
  }
}

TEST(SpaceSaving, LongKeysAreTruncatedAtACharacterBoundary) {
  // 127 ASCII bytes, then "é" (0xC3 0xA9) straddling byte 128: the cut goes before the "é".
  const std::string prefix(127, 'a');
  const std::string long_key = prefix + "\xC3\xA9" + "tail";
  EXPECT_EQ(SpaceSaving::stored_key(long_key), prefix);
  EXPECT_EQ(SpaceSaving::stored_key(std::string(128, 'b') + "c"), std::string(128, 'b'));
  EXPECT_EQ(SpaceSaving::stored_key("short"), "short");

  SpaceSaving sketch(4);
  sketch.add(std::string(128, 'b') + "1");
  sketch.add(std::string(128, 'b') + "2");  // the same first 128 bytes: the same key
  sketch.add("");
  EXPECT_EQ(sketch.top(4), (std::vector<TopEntry>{{std::string(128, 'b'), 2, 0}, {"", 1, 0}}));
}

TEST(CombinedSummary, SumsPartsAndWidensBoundsWhereAKeyWasNotTracked) {
  SpaceSaving first(2);
  first.add("x", 10);
  first.add("y", 1);  // full, smallest count 1
  SpaceSaving second(2);
  second.add("x", 5);
  second.add("z", 3);  // full, smallest count 3
  CombinedSummary combined;
  combined.add(first);
  combined.add(second);
  // y may have occurred up to 3 times in `second`, z up to once in `first`.
  EXPECT_EQ(combined.top(3), (std::vector<TopEntry>{{"x", 15, 0}, {"y", 4, 3}, {"z", 4, 1}}));
}

// --- TopKeys -------------------------------------------------------------------------------------

TEST(TopKeys, ZipfStreamReportsTheTrueTop10InOrder) {
  // 1,000,000 checks over 100,000 keys, Zipf s = 1.1, with the defaults the service uses.
  constexpr std::size_t kKeys = 100'000;
  const std::vector<std::string> names = key_names(kKeys);
  const Zipf zipf(kKeys, 1.1);
  std::mt19937_64 rng(20240901);
  ManualClock clock{kStart};
  TopKeys top_keys{clock};
  std::vector<std::uint64_t> counts(kKeys);
  for (int i = 0; i < 1'000'000; ++i) {
    const std::size_t rank = zipf(rng);
    ++counts[rank];
    top_keys.record(names[rank]);
  }
  std::unordered_map<std::string, std::uint64_t> truth;
  for (std::size_t i = 0; i < kKeys; ++i) {
    if (counts[i] > 0) truth.emplace(names[i], counts[i]);
  }
  const std::vector<TopEntry> expected = exact_top(truth, 10);
  // The heavy keys are tracked from their first few occurrences, long before any shard's smallest
  // counter (about 80 here) could reach them, so their counts are exact too.
  EXPECT_EQ(top_keys.top(10), expected);
  EXPECT_GT(truth.size(), 4096u);  // far more keys than counters went through
}

TEST(TopKeys, KeysLeaveTheTopOnceTheWindowHasPassed) {
  // Whatever the phase of the clock within a generation (a minute here).
  for (const Micros offset : {Micros{0}, Micros{30s}, Micros{1min - 1us}}) {
    SCOPED_TRACE(offset.count());
    ManualClock clock{kStart + offset};
    TopKeys top_keys{clock};
    top_keys.record("six-minutes-ago", 3);
    clock.advance(2min);
    top_keys.record("four-minutes-ago", 2);
    clock.advance(4min);
    EXPECT_EQ(top_keys.top(10), (std::vector<TopEntry>{{"four-minutes-ago", 2, 0}}));
    clock.advance(2min);
    EXPECT_TRUE(top_keys.top(10).empty());
  }
}

TEST(TopKeys, CountsCoverTheWholeWindowAndAtMostOneGenerationMore) {
  ManualClock clock{kStart};
  TopKeys top_keys{clock, 4096, 5min, 5};
  top_keys.record("k");
  clock.advance(5min);
  top_keys.record("k");
  EXPECT_EQ(top_keys.top(1), (std::vector<TopEntry>{{"k", 2, 0}}));  // 5 minutes ago still counts
  clock.advance(59s);
  EXPECT_EQ(top_keys.top(1), (std::vector<TopEntry>{{"k", 2, 0}}));
  clock.advance(1s);  // the first record's generation ended 5 minutes ago
  EXPECT_EQ(top_keys.top(1), (std::vector<TopEntry>{{"k", 1, 0}}));
}

TEST(TopKeys, ClockSteppingBackKeepsCountingInTheNewestGeneration) {
  ManualClock clock{kStart};
  TopKeys top_keys{clock};
  clock.advance(3min);
  top_keys.record("k", 2);
  clock.advance(-10min);  // a wall clock corrected backwards
  top_keys.record("k", 1);
  EXPECT_EQ(top_keys.top(5), (std::vector<TopEntry>{{"k", 3, 0}}));
}

TEST(TopKeys, MemoryIsFixedHoweverManyKeysPass) {
  ManualClock clock{kStart};
  TopKeys top_keys{clock};
  const std::size_t fixed = top_keys.memory_bytes();
  // The key slots alone: 4096 counters × (5 + 1) generations × kMaxKeyBytes.
  EXPECT_GE(fixed, 4096u * 6u * kMaxKeyBytes);
  EXPECT_LT(fixed, std::size_t{8} << 20);
  const std::string long_tail(300, 'x');
  for (int i = 0; i < 200'000; ++i) {
    top_keys.record((i % 2 == 0 ? "key:" : long_tail) + std::to_string(i));
    if (i % 20'000 == 0) clock.advance(1min);  // every generation fills in turn
  }
  EXPECT_EQ(top_keys.memory_bytes(), fixed);

  SpaceSaving sketch(1000);
  const std::size_t sketch_fixed = sketch.memory_bytes();
  for (int i = 0; i < 100'000; ++i) sketch.add("key:" + std::to_string(i));
  EXPECT_EQ(sketch.memory_bytes(), sketch_fixed);
  EXPECT_EQ(sketch.size(), 1000u);
}

// --- TopKeysConcurrency (ThreadSanitizer) --------------------------------------------------------

TEST(TopKeysConcurrency, ThreadsRecordingAtOnceAddUpExactly) {
  constexpr int kThreads = 4;
  constexpr int kKeys = 200;  // well under each shard's 512 counters: counts stay exact
  constexpr int kRounds = 500;
  ManualClock clock{kStart};
  TopKeys top_keys{clock};
  std::barrier start(kThreads + 1);
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int round = 0; round < kRounds; ++round) {
        for (int k = 0; k < kKeys; ++k) {
          top_keys.record("key:" + std::to_string((k + t * 50) % kKeys));  // threads overlap
        }
      }
      running.fetch_sub(1);
    });
  }
  // A reader meanwhile, as GET /admin/stats would be.
  threads.emplace_back([&] {
    start.arrive_and_wait();
    while (running.load() > 0) {
      const std::vector<TopEntry> top = top_keys.top(10);
      EXPECT_LE(top.size(), 10u);
    }
  });
  for (std::thread& th : threads) th.join();

  const std::vector<TopEntry> top = top_keys.top(1000);
  ASSERT_EQ(top.size(), static_cast<std::size_t>(kKeys));
  for (const TopEntry& e : top) {
    EXPECT_EQ(e.count, static_cast<std::uint64_t>(kThreads * kRounds)) << e.key;
    EXPECT_EQ(e.error, 0u) << e.key;
  }
}

}  // namespace
}  // namespace floodgate::admin
