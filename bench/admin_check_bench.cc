// What the admin side adds to a check (issue 9), side by side with the check alone, in one run:
//   BM_AdminCheck/store_only            MemoryStore::check of a hot key (the reference)
//   BM_AdminCheck/lists_empty           AccessLists::check (key + address), then the store
//   BM_AdminCheck/lists_100k            the same with 100,000 entries: 50,000 IPv4 CIDRs, 20,000
//                                       IPv6 CIDRs, 30,000 keys (split over both lists); the
//                                       client is on neither (the common case)
//   BM_AdminCheck/overrides_empty       Overrides::find, then the store
//   BM_AdminCheck/overrides_100k        with 90,000 exact-key and 10,000 prefix overrides (20
//                                       distinct prefix lengths); the key matches none
//   BM_AdminCheck/stats                 Stats::record after the store (what every decision pays)
// The figure: lists_100k - store_only <= 30 ns median; lists_empty - store_only not measurable.
// Run with --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true and compare
// medians (docs/PERFORMANCE.md).
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "admin/access_lists.h"
#include "admin/overrides.h"
#include "admin/stats.h"
#include "floodgate/memory_store.h"

namespace floodgate::admin {
namespace {

SystemClock system_clock;
const Policy kBucket = Policy::token_bucket(1'000'000'000, 1e9).value();
constexpr std::size_t kClients = 1024;  // a power of two

// The clients checked: keys and addresses on no list, made before timing.
struct Clients {
  std::vector<std::string> keys;
  std::vector<IpAddress> addresses;
};

const Clients& clients() {
  static const Clients made = [] {
    Clients c;
    std::mt19937_64 rng(7);
    for (std::size_t i = 0; i < kClients; ++i) {
      c.keys.push_back(fmt::format("user:{}", 10'000'000 + i));
      const auto a = static_cast<std::uint32_t>(rng());
      c.addresses.push_back(*parse_ip(fmt::format("{}.{}.{}.{}", 100 + (a >> 24) % 20,
                                                  (a >> 16) & 255, (a >> 8) & 255, a & 255)));
    }
    return c;
  }();
  return made;
}

void fill_lists(AccessLists& lists) {
  std::mt19937_64 rng(11);
  std::vector<ListEntry> entries;
  entries.reserve(100'000);
  auto entry = [&](bool allow, bool is_ip, std::string value) {
    ListEntry e;
    e.id = fmt::format("{}_{:016x}", allow ? "al" : "bl", entries.size());
    e.list = allow ? ListKind::kAllow : ListKind::kBlock;
    e.is_ip = is_ip;
    e.value = std::move(value);
    entries.push_back(std::move(e));
  };
  for (int i = 0; i < 50'000; ++i) {  // 10.0.0.0/8 .. 99.x: never a client's 100.. 119.x
    const auto a = static_cast<std::uint32_t>(rng());
    const int prefix = i % 10 < 6 ? 32 : i % 10 < 9 ? 24 : 20;
    const std::uint32_t net = (10 + (a >> 24) % 90) << 24 | (a & 0x00ffffff);
    const std::uint32_t masked = prefix == 32 ? net : net & (~0u << (32 - prefix));
    entry(i % 4 == 0, true,
          fmt::format("{}.{}.{}.{}/{}", masked >> 24, (masked >> 16) & 255, (masked >> 8) & 255,
                      masked & 255, prefix));
  }
  for (int i = 0; i < 20'000; ++i) {
    const auto a = rng();
    entry(i % 4 == 0, true,
          fmt::format("2001:db8:{:x}:{:x}::{:x}/128", (a >> 48) & 0xffff, (a >> 32) & 0xffff,
                      a & 0xffff));
  }
  for (int i = 0; i < 30'000; ++i) entry(i % 4 == 0, false, fmt::format("apikey:{:016x}", rng()));
  lists.replace_all(std::move(entries));
}

void fill_overrides(Overrides& overrides) {
  std::mt19937_64 rng(13);
  std::vector<Override> all;
  for (int i = 0; i < 100'000; ++i) {
    Override o;
    o.id = fmt::format("ov_{:016x}", i);
    o.prefix = i % 10 == 0;
    o.key = o.prefix ? fmt::format("tenant:{:0{}x}", rng(), 1 + i % 20)
                     : fmt::format("customer:{:016x}", rng());
    o.spec.algorithm = "fixed_window";
    o.spec.limit = Number::of(100);
    o.spec.window = Number::of(60);
    all.push_back(*overrides.build(std::move(o)));
  }
  overrides.replace_all(std::move(all));
}

enum Variant { kStoreOnly, kListsEmpty, kLists100k, kOverridesEmpty, kOverrides100k, kStats };

void BM_AdminCheck(benchmark::State& state) {
  const auto variant = static_cast<Variant>(state.range(0));
  const Clients& c = clients();
  MemoryStore store(system_clock);
  AccessLists lists(system_clock, 1'000'000);
  Overrides overrides(system_clock, 1'000'000, {});
  CoarseClock coarse_clock;
  Stats stats(coarse_clock);
  if (variant == kLists100k) fill_lists(lists);
  if (variant == kOverrides100k) fill_overrides(overrides);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::string& key = c.keys[i & (kClients - 1)];
    const IpAddress& ip = c.addresses[i & (kClients - 1)];
    ++i;
    switch (variant) {
      case kStoreOnly:
        benchmark::DoNotOptimize(store.check(key, kBucket, 1));
        break;
      case kListsEmpty:
      case kLists100k:
        if (lists.check(key, &ip) == Listed::kNone) {
          benchmark::DoNotOptimize(store.check(key, kBucket, 1));
        }
        break;
      case kOverridesEmpty:
      case kOverrides100k: {
        const auto changed = overrides.find(key, "");
        benchmark::DoNotOptimize(store.check(key, changed ? *changed : kBucket, 1));
        break;
      }
      case kStats: {
        const Decision d = store.check(key, kBucket, 1);
        stats.record(key, d.allowed, Micros{3});
        benchmark::DoNotOptimize(d);
        break;
      }
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AdminCheck)
    ->ArgName("variant")
    ->Arg(kStoreOnly)
    ->Arg(kListsEmpty)
    ->Arg(kLists100k)
    ->Arg(kOverridesEmpty)
    ->Arg(kOverrides100k)
    ->Arg(kStats);

}  // namespace
}  // namespace floodgate::admin
