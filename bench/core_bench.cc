// The algorithms alone: one decide() on a state in cache, no hashing, no lock, no clock read.
#include <benchmark/benchmark.h>

#include "core/decide.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;

Policy policy_for(Algorithm a) {
  switch (a) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(1000, 1e6).value();
    case Algorithm::kGcra:
      return Policy::gcra(1000, 1ms).value();
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(1000, 1e6).value();
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(1000, 1ms).value();
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(1000, 1ms).value();
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(1000, 1ms).value();
  }
  return Policy::token_bucket(1, 1).value();
}

// Time advances 1 us per decision, so the state keeps refilling / rolling as it would under load.
void BM_Decide(benchmark::State& state) {
  const auto algorithm = static_cast<Algorithm>(state.range(0));
  const Policy p = policy_for(algorithm);
  core::CompactState compact;
  core::SlidingLog log;
  Micros now = std::chrono::hours(24) * 20833;
  for (auto _ : state) {
    now += 1us;
    Decision d = algorithm == Algorithm::kSlidingWindowLog ? core::decide(p, log, now, 1)
                                                           : core::decide(p, compact, now, 1);
    benchmark::DoNotOptimize(d);
  }
  state.SetLabel(std::string(to_string(algorithm)));
}
BENCHMARK(BM_Decide)->DenseRange(0, kAlgorithmCount - 1);

}  // namespace
}  // namespace floodgate
