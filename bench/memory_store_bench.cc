// The memory store as a service uses it: key hashing, shard lock, map lookup, the decision, and a
// read of the real clock, per check.
//
// Figures the Foundation issue asks for (see docs/PERFORMANCE.md):
//   BM_HotKey/token_bucket                 one key, one thread                    <= 60 ns
//   BM_RandomKeys/1000000                  random keys over 1,000,000, one thread <= 300 ns
//   BM_DistinctKeys/threads:2 vs :1        items_per_second ratio                 >= 1.6x
//   BM_MemoryPerKey/*                      bytes_per_key at 1,000,000 keys        <= 96
#include <malloc.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;

SystemClock system_clock;

std::vector<std::string> make_keys(std::size_t n, std::string_view prefix) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (std::size_t i = 0; i < n; ++i) keys.push_back(std::string(prefix) + std::to_string(i));
  return keys;
}

// A policy that admits everything these benchmarks send, so the cost measured is the common path.
const Policy kBucket = Policy::token_bucket(4'000'000'000, 4'000'000'000).value();

void BM_HotKey(benchmark::State& state) {
  MemoryStore store(system_clock);
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.check("user:1234567", kBucket, 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HotKey)->Name("BM_HotKey/token_bucket");

void BM_HotKeyThroughLimiter(benchmark::State& state) {
  MemoryStore store(system_clock);
  Limiter limiter(store);
  for (auto _ : state) {
    benchmark::DoNotOptimize(limiter.check("user:1234567", kBucket, 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HotKeyThroughLimiter)->Name("BM_HotKey/token_bucket_via_limiter");

void BM_RandomKeys(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  static std::unique_ptr<MemoryStore> store;
  static std::vector<std::string> keys;
  if (!store || keys.size() != n) {
    store = std::make_unique<MemoryStore>(system_clock, MemoryStoreOptions{.max_keys = 2 * n});
    keys = make_keys(n, "api-key:");
    for (const std::string& k : keys) store->check(k, kBucket, 1);
  }
  // A fixed pseudo-random order, so every run visits the same keys.
  std::vector<std::uint32_t> order(1 << 16);
  std::mt19937 rng(42);
  for (auto& i : order) i = static_cast<std::uint32_t>(rng() % n);
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store->check(keys[order[next++ & 0xffff]], kBucket, 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomKeys)->Arg(1'000)->Arg(1'000'000);

// Each thread works its own keys (range(0) of them, in a fixed random order). One key per thread
// shows what the locks cost; 10,000 keys per thread adds false sharing (two threads' entries share
// cache lines: 40-byte entries, 64-byte lines); 250,000 per thread is a working set too big for
// the caches, as in a service with many clients.
void BM_DistinctKeys(benchmark::State& state) {
  static std::unique_ptr<MemoryStore> store;
  static std::vector<std::vector<std::string>> keys(8);
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto t = static_cast<std::size_t>(state.thread_index());
  if (t == 0)
    store = std::make_unique<MemoryStore>(system_clock, MemoryStoreOptions{.max_keys = 4'000'000});
  keys[t] = make_keys(n, "t" + std::to_string(t) + ":");
  std::vector<std::uint32_t> order(1 << 16);
  std::mt19937 rng(static_cast<std::uint32_t>(t));
  for (auto& i : order) i = static_cast<std::uint32_t>(rng() % n);
  std::size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(store->check(keys[t][order[next++ & 0xffff]], kBucket, 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DistinctKeys)
    ->Arg(1)
    ->Arg(10'000)
    ->Arg(250'000)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// Heap bytes per live key at 1,000,000 keys, by allocator statistics (key strings excluded).
void BM_MemoryPerKey(benchmark::State& state) {
  const Policy policies[] = {Policy::token_bucket(1000, 0.01).value(),
                             Policy::gcra(1'000'000, 1h).value(),
                             Policy::fixed_window(1'000'000, 1h).value()};
  const Policy& p = policies[state.range(0)];
  const std::vector<std::string> keys = make_keys(1'000'000, "client-");
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    auto store =
        std::make_unique<MemoryStore>(system_clock, MemoryStoreOptions{.max_keys = 2'000'000});
    for (const std::string& k : keys) store->check(k, p, 1);
    const std::size_t after = heap_in_use();
    state.counters["bytes_per_key"] =
        static_cast<double>(after - before) / static_cast<double>(store->stats().keys);
    state.counters["keys"] = static_cast<double>(store->stats().keys);
  }
  state.SetLabel(std::string(to_string(p.algorithm())));
}
BENCHMARK(BM_MemoryPerKey)->DenseRange(0, 2)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace floodgate
namespace floodgate {
namespace {
ManualClock manual_clock{std::chrono::hours(24) * 20833};
void BM_HotKeyManualClock(benchmark::State& state) {
  MemoryStore store(manual_clock);
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.check("user:1234567", kBucket, 1));
  }
}
BENCHMARK(BM_HotKeyManualClock);
}  // namespace
}  // namespace floodgate
