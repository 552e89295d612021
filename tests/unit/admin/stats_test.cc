// Stats on simulated time: decisions per second over the history, the rates over 1 s and a minute,
// latency percentiles over the last minute (and their slots ageing out), the top denied keys, and
// threads recording at once.
#include "admin/stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace floodgate::admin {
namespace {

using namespace std::chrono_literals;

constexpr Micros kStart{1'800'000'000'000'000};  // a whole second

TEST(Stats, CountsEachSecondAndForgetsNothingWithinFiveMinutes) {
  ManualClock clock(kStart);
  Stats stats(clock);
  for (int i = 0; i < 7; ++i) stats.record("a", true, 10us);
  for (int i = 0; i < 3; ++i) stats.record("b", false, 10us);
  clock.advance(1s);
  stats.record("a", true, 10us);
  clock.advance(1s);
  const auto h = stats.history(3);
  ASSERT_EQ(h.size(), 3U);
  EXPECT_EQ(h[0].t, kStart.count() / 1'000'000 - 1);
  EXPECT_EQ(h[0].allowed + h[0].denied, 0U);
  EXPECT_EQ(h[1].allowed, 7U);
  EXPECT_EQ(h[1].denied, 3U);
  EXPECT_EQ(h[2].allowed, 1U);
  EXPECT_EQ(stats.rate(1).allowed, 1.0);
  EXPECT_DOUBLE_EQ(stats.rate(60).allowed, 8.0 / 60);
  EXPECT_DOUBLE_EQ(stats.rate(60).denied, 3.0 / 60);
  // Five minutes later the ring slot of that second is reused, not added to.
  clock.advance(std::chrono::seconds(Stats::kHistorySeconds - 2));
  stats.record("c", true, 10us);
  clock.advance(1s);
  EXPECT_EQ(stats.history(1)[0].allowed, 1U);
  EXPECT_EQ(stats.history(Stats::kHistorySeconds - 1).size(),
            static_cast<std::size_t>(Stats::kHistorySeconds - 1));
}

TEST(Stats, LatencyPercentilesOverTheLastMinute) {
  ManualClock clock(kStart);
  Stats stats(clock);
  EXPECT_EQ(stats.latency().count, 0U);
  for (int i = 0; i < 98; ++i) stats.record("k", true, 100us);
  for (int i = 0; i < 2; ++i) stats.record("k", true, 20ms);
  const auto l = stats.latency();
  EXPECT_EQ(l.count, 100U);
  // Buckets are a quarter of a power of two wide: within 25 % of the true value.
  EXPECT_NEAR(l.p50_ms, 0.1, 0.025);
  EXPECT_NEAR(l.p99_ms, 20.0, 5.0);
  clock.advance(30s);
  EXPECT_EQ(stats.latency().count, 100U);
  clock.advance(31s);  // past the minute: the slot ages out
  EXPECT_EQ(stats.latency().count, 0U);
}

TEST(Stats, PercentilesOfSummedHistogramsAreTheFleets) {
  ManualClock clock(kStart);
  Stats a(clock);
  Stats b(clock);
  for (int i = 0; i < 50; ++i) a.record("k", true, 1ms);
  for (int i = 0; i < 50; ++i) b.record("k", true, 8ms);
  auto counts = a.latency_counts();
  const auto other = b.latency_counts();
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other[i];
  const auto l = Stats::percentiles(counts);
  EXPECT_EQ(l.count, 100U);
  EXPECT_NEAR(l.p50_ms, 1.0, 0.25);
  EXPECT_NEAR(l.p99_ms, 8.0, 2.0);
}

TEST(Stats, TheTopKeysAreTheDeniedOnes) {
  ManualClock clock(kStart);
  Stats stats(clock);
  for (int i = 0; i < 100; ++i) stats.record("allowed-a-lot", true, 1us);
  for (int i = 0; i < 5; ++i) stats.record("hot", false, 1us);
  stats.record("warm", false, 1us);
  const auto top = stats.top_keys().top(10);
  ASSERT_EQ(top.size(), 2U);
  EXPECT_EQ(top[0].key, "hot");
  EXPECT_EQ(top[0].count, 5U);
  EXPECT_EQ(top[1].key, "warm");
}

TEST(Stats, ThreadsRecordingAtOnceAreAllCounted) {
  ManualClock clock(kStart);
  Stats stats(clock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&stats, t] {
      for (int i = 0; i < 10'000; ++i) stats.record(t == 0 ? "x" : "y", i % 2 == 0, 5us);
    });
  }
  for (auto& t : threads) t.join();
  clock.advance(1s);
  const auto h = stats.history(1);
  EXPECT_EQ(h[0].allowed, 20'000U);
  EXPECT_EQ(h[0].denied, 20'000U);
  EXPECT_EQ(stats.latency().count, 40'000U);
}

}  // namespace
}  // namespace floodgate::admin
