// floodgate: the command-line entry point. Subcommands are added as the fronts land; today the
// binary answers --help and --version and offers `check`, a one-shot in-process decision that shows
// the algorithms at work.
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "floodgate/policy.h"
#include "floodgate/version.h"

namespace {

struct CheckArgs {
  std::string key = "demo";
  std::string algorithm = "token_bucket";
  std::int64_t limit = 10;
  double rate = 1;
  double window_s = 60;
  std::int64_t cost = 1;
  int repeat = 1;
};

floodgate::Result<floodgate::Policy> make_policy(const CheckArgs& a) {
  using floodgate::Algorithm;
  using floodgate::Policy;
  const auto window_or = floodgate::window_from_seconds(a.window_s);
  if (!window_or) return window_or.error();
  const floodgate::Micros window = *window_or;
  const auto algorithm = floodgate::parse_algorithm(a.algorithm);
  if (!algorithm)
    return floodgate::ParamError{"algorithm", "unknown algorithm '" + a.algorithm + "'"};
  switch (*algorithm) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(a.limit, a.rate);
    case Algorithm::kGcra:
      return Policy::gcra(a.limit, window);
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(a.limit, a.rate);
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(a.limit, window);
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(a.limit, window);
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(a.limit, window);
  }
  return floodgate::ParamError{"algorithm", "unknown algorithm"};
}

std::string ms(floodgate::Micros d) {
  if (d == floodgate::kNever) return "never";
  return std::to_string((d.count() + 999) / 1000) + "ms";
}

int run_check(const CheckArgs& args) {
  auto policy = make_policy(args);
  if (!policy) {
    fmt::print(stderr, "floodgate: {}: {}\n", policy.error().field, policy.error().message);
    return 2;
  }
  floodgate::SystemClock clock;
  floodgate::MemoryStore store(clock);
  floodgate::Limiter limiter(store);
  for (int i = 0; i < args.repeat; ++i) {
    const floodgate::Decision d =
        limiter.check(args.key, *policy, static_cast<std::uint64_t>(args.cost)).decision;
    fmt::print("{} allowed={} limit={} remaining={} reset_after={} retry_after={}{}\n", i + 1,
               d.allowed, d.limit, d.remaining, ms(d.reset_after), ms(d.retry_after),
               d.allowed ? "" : fmt::format(" reason={}", floodgate::to_string(d.reason)));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"floodgate: a distributed rate limiter service", "floodgate"};
  app.set_version_flag("--version", std::string("floodgate ") + floodgate::kVersion);
  app.require_subcommand(0, 1);

  CheckArgs check_args;
  CLI::App* check = app.add_subcommand(
      "check",
      "Run decisions in-process on the memory store and print them (a demo of the algorithms)");
  check->add_option("--key", check_args.key, "Key to limit")->capture_default_str();
  check
      ->add_option("--algorithm", check_args.algorithm,
                   "token_bucket, gcra, leaky_bucket, fixed_window, sliding_window_log or "
                   "sliding_window_counter")
      ->capture_default_str();
  check->add_option("--limit", check_args.limit, "Capacity, burst or window limit")
      ->capture_default_str();
  check->add_option("--rate", check_args.rate, "Refill or leak rate per second (buckets)")
      ->capture_default_str();
  check->add_option("--window", check_args.window_s, "Window in seconds (window algorithms, gcra)")
      ->capture_default_str();
  check->add_option("--cost", check_args.cost, "Cost of each request (0 peeks)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4294967295}))
      ->capture_default_str();
  check->add_option("--repeat", check_args.repeat, "How many requests to send")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (check->parsed()) return run_check(check_args);
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
