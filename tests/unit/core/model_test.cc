// Randomized model tests: every algorithm against a deliberately naive reference over long random
// sequences of (time step, cost), including steps backwards in time.
//
// The references share only the specification with the real code:
//   - they keep their state another way (tokens instead of debt, an absolute theoretical arrival
//     time, a map of every window's count, the full list of admissions) in 128-bit integers that
//     cannot overflow;
//   - they answer "when" questions (retry_after, reset_after, delay) by binary search over time on
//     "would a request of this cost pass at t?", where the real code uses closed forms.
// The spec they share: the compiled policy's integer rate (ticks_per_us / interval), the 16-bit
// sliding-counter weight rounded up, epoch-aligned windows, a clock behind the latest moment a key
// has seen counts as that moment, and a key whose state equals a fresh one forgets its past.
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "core/arith.h"
#include "core/decide.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
__extension__ using i128 = __int128;  // a GCC/Clang extension: fine for a test

constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::min();

class Reference {
 public:
  virtual ~Reference() = default;
  // would_pass(): would a request of `cost` pass at time t, given no other request until then?
  virtual bool would_pass(std::int64_t t, std::uint64_t cost) const = 0;
  // apply(): decides at t, updates the state; returns allowed and what remains after.
  virtual bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) = 0;
};

i128 floor_div128(i128 a, i128 b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// token_bucket and leaky_bucket: a bucket of tokens, `per_us` / `interval` tokens per microsecond.
class BucketReference final : public Reference {
 public:
  explicit BucketReference(const Policy& p)
      : full_(i128(p.limit()) * p.interval()), interval_(p.interval()), per_us_(p.ticks_per_us()) {}

  bool would_pass(std::int64_t t, std::uint64_t cost) const override {
    return tokens_at(t) >= i128(cost) * interval_ && i128(cost) * interval_ <= full_;
  }
  bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) override {
    const bool ok = would_pass(t, cost);
    i128 tokens = tokens_at(t);
    last_ = effective(t);
    if (ok) tokens -= i128(cost) * interval_;
    tokens_ = tokens;
    remaining = static_cast<std::uint64_t>(tokens / interval_);
    if (tokens_ == full_) last_ = kNone;  // a full bucket forgets its past
    return ok;
  }

 private:
  std::int64_t effective(std::int64_t t) const { return last_ == kNone ? t : std::max(t, last_); }
  i128 tokens_at(std::int64_t t) const {
    if (last_ == kNone) return full_;
    return std::min(full_, tokens_ + i128(effective(t) - last_) * per_us_);
  }

  i128 full_, interval_, per_us_;
  i128 tokens_ = 0;
  std::int64_t last_ = kNone;
};

// gcra: redis-cell's theoretical arrival time, kept as an absolute tick count.
class GcraReference final : public Reference {
 public:
  explicit GcraReference(const Policy& p)
      : burst_(p.limit()), interval_(p.interval()), per_us_(p.ticks_per_us()) {}

  bool would_pass(std::int64_t t, std::uint64_t cost) const override {
    if (cost > burst_) return false;
    const i128 now = i128(effective(t)) * per_us_;
    const i128 tat = std::max(tat_, now) + i128(cost) * interval_;
    return tat - now <= i128(burst_) * interval_;
  }
  bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) override {
    const bool ok = would_pass(t, cost);
    const std::int64_t eff = effective(t);
    const i128 now = i128(eff) * per_us_;
    i128 tat = std::max(tat_, now);
    if (ok) tat += i128(cost) * interval_;
    remaining = static_cast<std::uint64_t>((i128(burst_) * interval_ - (tat - now)) / interval_);
    tat_ = tat;
    last_ = eff;
    if (tat_ == now) last_ = kNone, tat_ = 0;
    return ok;
  }

 private:
  std::int64_t effective(std::int64_t t) const { return last_ == kNone ? t : std::max(t, last_); }

  std::uint64_t burst_;
  i128 interval_, per_us_;
  i128 tat_ = 0;
  std::int64_t last_ = kNone;
};

// WindowCounts: every epoch-aligned window's admitted cost, and the latest window seen while the
// key held state (a clock behind it counts as being in it).
class WindowCounts {
 public:
  explicit WindowCounts(std::int64_t window) : window_(window) {}

  std::int64_t window_of(std::int64_t t) const {
    const auto w = static_cast<std::int64_t>(floor_div128(t, window_));
    return latest_ == kNone ? w : std::max(w, latest_);
  }
  std::uint64_t count_in(std::int64_t w) const {
    auto it = counts_.find(w);
    return it == counts_.end() ? 0 : it->second;
  }
  void add(std::int64_t w, std::uint64_t cost) {
    if (cost > 0) counts_[w] += cost;
  }
  void seen(std::int64_t w) { latest_ = w; }
  void forget() {
    counts_.clear();
    latest_ = kNone;
  }
  std::int64_t window() const { return window_; }

 private:
  std::int64_t window_;
  std::map<std::int64_t, std::uint64_t> counts_;
  std::int64_t latest_ = kNone;
};

// fixed_window: every window's count, in a map.
class FixedWindowReference final : public Reference {
 public:
  explicit FixedWindowReference(const Policy& p) : limit_(p.limit()), counts_(p.window().count()) {}

  bool would_pass(std::int64_t t, std::uint64_t cost) const override {
    return counts_.count_in(counts_.window_of(t)) + cost <= limit_;
  }
  bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) override {
    const bool ok = cost <= limit_ && would_pass(t, cost);
    const std::int64_t w = counts_.window_of(t);
    if (ok) counts_.add(w, cost);
    remaining = limit_ - counts_.count_in(w);
    counts_.seen(w);
    if (counts_.count_in(w) == 0) counts_.forget();
    return ok;
  }

 private:
  std::uint64_t limit_;
  WindowCounts counts_;
};

// sliding_window_log: every admission, summed over the window ending at t.
class SlidingLogReference final : public Reference {
 public:
  explicit SlidingLogReference(const Policy& p) : limit_(p.limit()), window_(p.window().count()) {}

  bool would_pass(std::int64_t t, std::uint64_t cost) const override {
    return cost <= limit_ && in_window(effective(t)) + cost <= limit_;
  }
  bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) override {
    const bool ok = would_pass(t, cost);
    const std::int64_t eff = effective(t);
    if (ok && cost > 0) admitted_.push_back({eff, cost});
    remaining = limit_ - in_window(eff);
    latest_ = eff;
    if (in_window(eff) == 0) admitted_.clear(), latest_ = kNone;
    return ok;
  }

 private:
  std::int64_t effective(std::int64_t t) const {
    return latest_ == kNone ? t : std::max(t, latest_);
  }
  std::uint64_t in_window(std::int64_t t) const {
    std::uint64_t sum = 0;
    for (const auto& [at, n] : admitted_) {
      if (at > t - window_ && at <= t) sum += n;
    }
    return sum;
  }

  std::uint64_t limit_;
  std::int64_t window_;
  std::vector<std::pair<std::int64_t, std::uint64_t>> admitted_;
  std::int64_t latest_ = kNone;
};

// sliding_window_counter: every window's count; the estimate recomputed in 128-bit integers.
class SlidingCounterReference final : public Reference {
 public:
  explicit SlidingCounterReference(const Policy& p)
      : limit_(p.limit()), shift_(p.weight_shift()), counts_(p.window().count()) {}

  bool would_pass(std::int64_t t, std::uint64_t cost) const override {
    return cost <= limit_ &&
           estimate(t) + i128(cost) * core::kWeightOne <= i128(limit_) * core::kWeightOne;
  }
  bool apply(std::int64_t t, std::uint64_t cost, std::uint64_t& remaining) override {
    const bool ok = would_pass(t, cost);
    const std::int64_t w = counts_.window_of(t);
    if (ok) counts_.add(w, cost);
    counts_.seen(w);
    const i128 used = estimate(t);
    const i128 ceiling = i128(limit_) * core::kWeightOne;
    remaining =
        used >= ceiling ? 0 : static_cast<std::uint64_t>((ceiling - used) / core::kWeightOne);
    if (counts_.count_in(w) == 0 && counts_.count_in(w - 1) == 0) counts_.forget();
    return ok;
  }

 private:
  i128 estimate(std::int64_t t) const {
    const std::int64_t w = counts_.window_of(t);
    const i128 window = counts_.window();
    const i128 offset = std::max<i128>(0, i128(t) - i128(w) * window);
    const i128 scaled_window = window >> shift_;
    const i128 scaled_offset = std::min<i128>(offset >> shift_, scaled_window);
    const i128 x = (scaled_window - scaled_offset) * core::kWeightOne;
    const i128 weight = (x + scaled_window - 1) / scaled_window;  // rounded up
    return i128(counts_.count_in(w - 1)) * weight + i128(counts_.count_in(w)) * core::kWeightOne;
  }

  std::uint64_t limit_;
  int shift_;
  WindowCounts counts_;
};

std::unique_ptr<Reference> make_reference(const Policy& p) {
  switch (p.algorithm()) {
    case Algorithm::kTokenBucket:
    case Algorithm::kLeakyBucket:
      return std::make_unique<BucketReference>(p);
    case Algorithm::kGcra:
      return std::make_unique<GcraReference>(p);
    case Algorithm::kFixedWindow:
      return std::make_unique<FixedWindowReference>(p);
    case Algorithm::kSlidingWindowLog:
      return std::make_unique<SlidingLogReference>(p);
    case Algorithm::kSlidingWindowCounter:
      return std::make_unique<SlidingCounterReference>(p);
  }
  return nullptr;
}

// earliest_pass(): the first t >= now at which `cost` would pass, by binary search; kNever if it
// does not pass within four years (longer than any refill, window or clock lag in these tests).
Micros earliest_pass(const Reference& ref, std::int64_t now, std::uint64_t cost) {
  if (ref.would_pass(now, cost)) return Micros{0};
  std::int64_t lo = now;  // fails
  std::int64_t hi = now + Micros(std::chrono::hours(24 * 365 * 4)).count();
  if (!ref.would_pass(hi, cost)) return kNever;
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    (ref.would_pass(mid, cost) ? hi : lo) = mid;
  }
  return Micros{hi - now};
}

// The system under test: the core decision functions on a store-like state.
struct Subject {
  Policy policy;
  core::CompactState compact;
  core::SlidingLog log;

  Decision decide(std::int64_t now, std::uint64_t cost) {
    if (policy.algorithm() == Algorithm::kSlidingWindowLog) {
      return core::decide(policy, log, Micros{now}, cost);
    }
    return core::decide(policy, compact, Micros{now}, cost);
  }
};

Policy random_policy(Algorithm a, std::mt19937_64& rng) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  const std::int64_t limit = pick(1, 3) == 1 ? pick(1, 3) : pick(1, 60);
  const Micros window{pick(1, 4) == 1 ? pick(1'000, 50'000) : pick(100'000, 20'000'000)};
  const double rate = std::uniform_real_distribution<double>(0.05, 200.0)(rng);
  switch (a) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(limit, pick(1, 10) == 1 ? 0.0 : rate).value();
    case Algorithm::kGcra:
      return Policy::gcra(limit, window, pick(0, 1) ? std::optional<std::int64_t>{} : pick(1, 80))
          .value();
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(limit, rate).value();
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(limit, window).value();
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(limit, window).value();
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(limit, window).value();
  }
  return Policy::token_bucket(1, 1).value();
}

class ModelTest : public ::testing::TestWithParam<Algorithm> {};

TEST_P(ModelTest, MatchesTheNaiveReferenceOverRandomSequences) {
  const Algorithm algorithm = GetParam();
  for (std::uint64_t seed = 1; seed <= 24; ++seed) {
    std::mt19937_64 rng(seed * 7919 + static_cast<std::uint64_t>(algorithm));
    Subject subject{random_policy(algorithm, rng), {}, {}};
    const Policy& p = subject.policy;
    std::unique_ptr<Reference> ref = make_reference(p);
    const std::int64_t span = std::max<std::int64_t>(p.window().count(), 1'000'000);
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };

    std::int64_t now = Micros(std::chrono::hours(24 * 20833)).count() + pick(0, span);
    std::int64_t latest = now;
    for (int step = 0; step < 1500; ++step) {
      switch (pick(0, 9)) {
        case 0:
          break;  // same microsecond
        case 1:
        case 2:
        case 3:
          now += pick(1, 2'000);
          break;
        case 4:
        case 5:
        case 6:
          now += pick(1, span / 4);
          break;
        case 7:
          now += pick(span, 3 * span);
          break;  // let windows roll, buckets refill
        case 8:
          now -= pick(1, span / 2);
          break;  // the clock steps back
        default:
          now += pick(1, span / 50 + 1);
          break;
      }
      if (now < latest - span) now = latest;  // keep lags bounded
      latest = std::max(latest, now);
      const std::uint64_t cost =
          pick(0, 20) == 0
              ? static_cast<std::uint64_t>(pick(0, static_cast<std::int64_t>(p.limit()) + 2))
              : static_cast<std::uint64_t>(pick(0, 6) == 0 ? 0 : 1);

      SCOPED_TRACE(::testing::Message()
                   << to_string(algorithm) << " seed " << seed << " step " << step << " limit "
                   << p.limit() << " window " << p.window().count() << " rate " << p.rate()
                   << " now " << now << " cost " << cost);
      // Expected "when" answers come from the reference's state before this request is applied.
      const Micros delay_expected = earliest_pass(*ref, now, p.limit());
      const Micros retry_expected = cost > p.limit() ? kNever : earliest_pass(*ref, now, cost);
      std::uint64_t remaining_expected = 0;
      const bool allowed_expected = ref->apply(now, cost, remaining_expected);
      const Micros reset_expected = earliest_pass(*ref, now, p.limit());

      const Decision d = subject.decide(now, cost);
      ASSERT_EQ(d.allowed, allowed_expected);
      ASSERT_EQ(d.remaining, remaining_expected);
      ASSERT_EQ(d.reset_after, reset_expected);
      if (d.allowed) {
        ASSERT_EQ(d.retry_after, 0us);
        ASSERT_EQ(d.reason, DenyReason::kNone);
        if (algorithm == Algorithm::kLeakyBucket) {
          ASSERT_EQ(d.delay, delay_expected);
        }
      } else {
        ASSERT_EQ(d.reason,
                  cost > p.limit() ? DenyReason::kCostExceedsCapacity : DenyReason::kLimited);
        ASSERT_EQ(d.retry_after, retry_expected);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, ModelTest,
                         ::testing::Values(Algorithm::kTokenBucket, Algorithm::kGcra,
                                           Algorithm::kLeakyBucket, Algorithm::kFixedWindow,
                                           Algorithm::kSlidingWindowLog,
                                           Algorithm::kSlidingWindowCounter),
                         [](const auto& param_info) {
                           return std::string(to_string(param_info.param));
                         });

}  // namespace
}  // namespace floodgate
