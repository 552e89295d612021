// File: bench/top_keys_bench.cc
//
// top_keys_bench: the top-keys sketch of GET /admin/stats (admin/top_keys.h) against an exact
// count, on a Zipf stream like the keys a real limiter denies: is the reported top 10 the true top
// 10 (same keys, same order), how much memory each side holds, and what one record() costs.
//
// Usage: top_keys_bench [checks=10000000] [keys=1000000] [s=1.1]
// The stream is drawn once with a fixed seed, then fed to TopKeys (default capacity, window,
// generations and shards; a ManualClock that stays inside the window) in 3 timed passes, each on
// a fresh TopKeys, and once to a std::unordered_map. Exit status 0 when the top 10 are equal.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "admin/top_keys.h"
#include "floodgate/clock.h"

namespace {

using floodgate::admin::TopEntry;
using floodgate::admin::TopKeys;

constexpr std::size_t kTop = 10;
constexpr std::uint64_t kSeed = 20240901;
constexpr int kPasses = 3;

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

bool ranks_before(const TopEntry& a, const TopEntry& b) {
  return a.count != b.count ? a.count > b.count : a.key < b.key;
}

// exact_map_bytes(): what an unordered_map<string, uint64_t> holds, approximately (libstdc++):
// the bucket array, and per key one node (next pointer, key, count, cached hash) as malloc rounds
// it (+8 bytes of header, to 16), plus the key's own heap buffer when it outgrows the inline one.
std::size_t exact_map_bytes(const std::unordered_map<std::string, std::uint64_t>& map) {
  const auto malloc_size = [](std::size_t n) { return (n + 8 + 15) / 16 * 16; };
  const std::size_t node =
      sizeof(void*) + sizeof(std::pair<const std::string, std::uint64_t>) + sizeof(std::size_t);
  std::size_t bytes = sizeof(map) + map.bucket_count() * sizeof(void*);
  for (const auto& entry : map) {
    bytes += malloc_size(node);
    if (entry.first.capacity() > 15) bytes += malloc_size(entry.first.capacity() + 1);
  }
  return bytes;
}

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: top_keys_bench [checks=10000000] [keys=1000000] [s=1.1]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 4) usage();
  char* end = nullptr;
  const std::uint64_t checks = argc > 1 ? std::strtoull(argv[1], &end, 10) : 10'000'000ULL;
  if (argc > 1 && (*end != '\0' || checks == 0)) usage();
  const std::uint64_t keys = argc > 2 ? std::strtoull(argv[2], &end, 10) : 1'000'000ULL;
  if (argc > 2 && (*end != '\0' || keys == 0 || keys > 0xFFFF'FFFFU)) usage();
  const double s = argc > 3 ? std::strtod(argv[3], &end) : 1.1;
  if (argc > 3 && (*end != '\0' || !(s > 0 && s < 100))) usage();

  // The stream, drawn before any timing: key ranks, and the key names the sketch sees.
  std::vector<std::string> names;
  names.reserve(keys);
  for (std::uint64_t i = 0; i < keys; ++i) names.push_back("key:" + std::to_string(i + 1));
  std::vector<std::uint32_t> stream;
  stream.reserve(checks);
  {
    const Zipf zipf(keys, s);
    std::mt19937_64 rng(kSeed);
    for (std::uint64_t i = 0; i < checks; ++i)
      stream.push_back(static_cast<std::uint32_t>(zipf(rng)));
  }
  std::printf("top_keys_bench: %llu checks over %llu keys, Zipf s=%.2f, seed %llu\n",
              static_cast<unsigned long long>(checks), static_cast<unsigned long long>(keys), s,
              static_cast<unsigned long long>(kSeed));

  // The sketch: kPasses timed passes, each on a fresh TopKeys; the last one's top 10 is reported.
  floodgate::ManualClock clock{std::chrono::hours(24) * 20833};  // stays still: one generation
  std::vector<double> ns_per_record;
  std::vector<TopEntry> reported;
  std::size_t sketch_bytes = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    auto top_keys = std::make_unique<TopKeys>(clock);
    const auto t0 = std::chrono::steady_clock::now();
    for (const std::uint32_t rank : stream) top_keys->record(names[rank]);
    const auto t1 = std::chrono::steady_clock::now();
    ns_per_record.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() /
                            static_cast<double>(checks));
    reported = top_keys->top(kTop);
    sketch_bytes = top_keys->memory_bytes();
  }
  std::vector<double> sorted_ns = ns_per_record;
  std::sort(sorted_ns.begin(), sorted_ns.end());

  // The exact count.
  std::unordered_map<std::string, std::uint64_t> exact;
  const auto e0 = std::chrono::steady_clock::now();
  for (const std::uint32_t rank : stream) ++exact[names[rank]];
  const auto e1 = std::chrono::steady_clock::now();
  const double ns_per_exact =
      std::chrono::duration<double, std::nano>(e1 - e0).count() / static_cast<double>(checks);
  std::vector<TopEntry> truth;
  truth.reserve(exact.size());
  for (const auto& [key, count] : exact) truth.push_back(TopEntry{key, count, 0});
  const std::size_t true_n = std::min(kTop, truth.size());
  std::partial_sort(truth.begin(), truth.begin() + static_cast<std::ptrdiff_t>(true_n), truth.end(),
                    ranks_before);
  truth.resize(true_n);

  std::printf("\n%-4s  %-16s %12s %10s   |  %-16s %12s\n", "rank", "sketch key", "count", "error",
              "true key", "count");
  for (std::size_t i = 0; i < std::max(reported.size(), truth.size()); ++i) {
    const TopEntry none{"-", 0, 0};
    const TopEntry& r = i < reported.size() ? reported[i] : none;
    const TopEntry& t = i < truth.size() ? truth[i] : none;
    std::printf("%-4zu  %-16s %12llu %10llu   |  %-16s %12llu%s\n", i + 1, r.key.c_str(),
                static_cast<unsigned long long>(r.count), static_cast<unsigned long long>(r.error),
                t.key.c_str(), static_cast<unsigned long long>(t.count),
                r.key == t.key ? "" : "   <- differs");
  }
  bool equal = reported.size() == truth.size();
  for (std::size_t i = 0; equal && i < reported.size(); ++i)
    equal = reported[i].key == truth[i].key;

  std::printf("\ntop %zu equal (same keys, same order): %s\n", kTop, equal ? "yes" : "NO");
  std::printf("sketch memory:    %10.2f MiB (%zu bytes, fixed whatever the keys)\n",
              mib(sketch_bytes), sketch_bytes);
  const std::size_t exact_bytes = exact_map_bytes(exact);
  std::printf("exact map memory: %10.2f MiB (approximately; %zu distinct keys, grows with them)\n",
              mib(exact_bytes), exact.size());
  std::printf("record():         %10.1f ns (median of %d passes:", sorted_ns[sorted_ns.size() / 2],
              kPasses);
  for (const double ns : ns_per_record) std::printf(" %.1f", ns);
  std::printf(")\nexact map ++:     %10.1f ns (1 pass, single-threaded, no lock)\n", ns_per_exact);
  return equal ? 0 : 1;
}
