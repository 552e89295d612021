#include "admin/stats.h"

#include <algorithm>
#include <bit>
#include <ctime>

namespace floodgate::admin {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr std::size_t kStripes = 16;
constexpr int kLatencySlots = 6;  // of 10 s: the last minute
constexpr std::int64_t kLatencySlotSeconds = 10;
// Latency buckets in microseconds: 0..3 exactly, then four per power of two up to 2^30 us.
constexpr std::size_t kSubBuckets = 4;
constexpr std::size_t kBuckets = 4 + 29 * kSubBuckets;

std::size_t bucket_of(std::int64_t us) {
  if (us < 4) return static_cast<std::size_t>(std::max<std::int64_t>(0, us));
  const auto v =
      static_cast<std::uint64_t>(std::min<std::int64_t>(us, (std::int64_t{1} << 30) - 1));
  const auto e = static_cast<int>(std::bit_width(v)) - 1;  // 2..29
  const std::size_t sub = (v >> (e - 2)) & (kSubBuckets - 1);
  return 4 + static_cast<std::size_t>(e - 2) * kSubBuckets + sub;
}

// The middle of a bucket, in microseconds.
double bucket_value(std::size_t b) {
  if (b < 4) return static_cast<double>(b);
  const std::size_t e = (b - 4) / kSubBuckets + 2;
  const std::size_t sub = (b - 4) % kSubBuckets;
  const double low = static_cast<double>((std::uint64_t{1} << e) + (sub << (e - 2)));
  return low + static_cast<double>(std::uint64_t{1} << (e - 2)) / 2;
}

}  // namespace

struct alignas(64) Stats::Stripe {
  struct SecondSlot {
    std::atomic<std::int64_t> t{0};
    std::atomic<std::uint64_t> allowed{0};
    std::atomic<std::uint64_t> denied{0};
  };
  struct LatencySlot {
    std::atomic<std::int64_t> period{-1};
    std::array<std::atomic<std::uint64_t>, kBuckets> counts{};
  };
  std::array<SecondSlot, kHistorySeconds> seconds;
  std::array<LatencySlot, kLatencySlots> latency;
};

Stats::Stats(const Clock& clock)
    : clock_(clock), stripes_(std::make_unique<Stripe[]>(kStripes)), top_(clock) {}

Stats::~Stats() = default;

Stats::Stripe& Stats::stripe() const {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, kRelaxed) % kStripes;
  return stripes_[mine];
}

Micros CoarseClock::now() const {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return Micros{std::int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000};
}

void Stats::record(std::string_view key, bool allowed, const Micros* took) {
  const std::int64_t now_s = clock_.now().count() / 1'000'000;
  Stripe& s = stripe();
  auto& second = s.seconds[static_cast<std::size_t>(now_s % kHistorySeconds)];
  std::int64_t seen = second.t.load(kRelaxed);
  if (seen != now_s && second.t.compare_exchange_strong(seen, now_s, kRelaxed)) {
    second.allowed.store(0, kRelaxed);
    second.denied.store(0, kRelaxed);
  }
  (allowed ? second.allowed : second.denied).fetch_add(1, kRelaxed);

  if (took == nullptr) {
    if (!allowed) top_.record(key);
    return;
  }
  const std::int64_t period = now_s / kLatencySlotSeconds;
  auto& slot = s.latency[static_cast<std::size_t>(period % kLatencySlots)];
  std::int64_t seen_period = slot.period.load(kRelaxed);
  if (seen_period != period && slot.period.compare_exchange_strong(seen_period, period, kRelaxed)) {
    for (auto& c : slot.counts) c.store(0, kRelaxed);
  }
  slot.counts[bucket_of(took->count())].fetch_add(1, kRelaxed);

  if (!allowed) top_.record(key);
}

std::vector<Stats::Second> Stats::history(int seconds) const {
  seconds = std::clamp(seconds, 1, kHistorySeconds - 1);
  const std::int64_t now_s = clock_.now().count() / 1'000'000;
  std::vector<Second> out;
  out.reserve(static_cast<std::size_t>(seconds));
  for (std::int64_t t = now_s - seconds; t < now_s; ++t) {
    Second sum{t, 0, 0};
    for (std::size_t i = 0; i < kStripes; ++i) {
      const auto& slot = stripes_[i].seconds[static_cast<std::size_t>(t % kHistorySeconds)];
      if (slot.t.load(kRelaxed) != t) continue;
      sum.allowed += slot.allowed.load(kRelaxed);
      sum.denied += slot.denied.load(kRelaxed);
    }
    out.push_back(sum);
  }
  return out;
}

Stats::Rate Stats::rate(int seconds) const {
  Rate r;
  const auto h = history(seconds);
  for (const Second& s : h) {
    r.allowed += static_cast<double>(s.allowed);
    r.denied += static_cast<double>(s.denied);
  }
  r.allowed /= static_cast<double>(h.size());
  r.denied /= static_cast<double>(h.size());
  return r;
}

std::vector<std::uint64_t> Stats::latency_counts() const {
  const std::int64_t period = clock_.now().count() / 1'000'000 / kLatencySlotSeconds;
  std::vector<std::uint64_t> counts(kBuckets, 0);
  for (std::size_t i = 0; i < kStripes; ++i) {
    for (const auto& slot : stripes_[i].latency) {
      const std::int64_t p = slot.period.load(kRelaxed);
      if (p < 0 || p <= period - kLatencySlots || p > period) continue;
      for (std::size_t b = 0; b < kBuckets; ++b) counts[b] += slot.counts[b].load(kRelaxed);
    }
  }
  return counts;
}

Stats::Latency Stats::percentiles(const std::vector<std::uint64_t>& counts) {
  Latency l;
  for (const std::uint64_t c : counts) l.count += c;
  if (l.count == 0) return l;
  auto percentile = [&](double q) {
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(l.count - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < counts.size() && b < kBuckets; ++b) {
      seen += counts[b];
      if (seen >= rank) return bucket_value(b) / 1000.0;
    }
    return bucket_value(kBuckets - 1) / 1000.0;
  };
  l.p50_ms = percentile(0.50);
  l.p99_ms = percentile(0.99);
  return l;
}

}  // namespace floodgate::admin
