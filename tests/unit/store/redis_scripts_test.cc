// File: unit/store/redis_scripts_test.cc
//
// The Redis Lua scripts (src/store/redis/scripts/*.lua) against core::decide(), on a real
// redis-server (label: integration). Random policies and random (time, cost) sequences go to both,
// and for every step
//   - every field of the decision agrees (allowed, reason, remaining, reset_after, retry_after,
//     delay);
//   - the state the script leaves in Redis is the C++ state, and no key exists exactly when the
//     C++ state is fresh;
//   - every key expires once its state is fresh and not before.
// Calls of many checks (ScriptBatches: up to 40, several on one key, each with its own policy)
// decide and store exactly what core::decide() does for the same checks one after the other, and
// a malformed call writes nothing.
// The scripts under test are the test-time variants (time from ARGV[1]); the production variants
// are checked to ignore ARGV[1] and read Redis TIME.
//
// Seeds are fixed per algorithm; FLOODGATE_TEST_SEED=<n> runs other sequences. A failure names the
// seed, the policy and the step.
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/debt_meter.h"
#include "core/decide.h"
#include "core/fixed_window.h"
#include "core/sliding_window_counter.h"
#include "core/sliding_window_log.h"
#include "floodgate/decision.h"
#include "floodgate/policy.h"
#include "floodgate/redis_store.h"
#include "store/redis/scripts.h"
#include "testlib/redis_client.h"
#include "testlib/redis_server.h"

namespace floodgate {
namespace {

using namespace std::chrono_literals;
using Rng = std::mt19937_64;
using testing::batch_command;
using testing::Check;
using testing::eval_command;
using testing::RedisClient;
using testing::Reply;

// The scripts' constants (prelude.lua).
constexpr std::int64_t kTestTtlFloorMs = 60'000;
constexpr std::int64_t kNeverTtlMs = std::int64_t{365} * 24 * 3600 * 1000;
// A realistic time (2026) in microseconds: ~2^50.6, where a double's integers are still exact
// and %.14g would already drop digits.
constexpr std::int64_t kEpoch2026 = 1'780'000'000'000'000;
// Simulated time stays below this (still far below 2^53).
constexpr std::int64_t kLatestTestTime = 4'000'000'000'000'000;

constexpr Algorithm kAlgorithms[] = {
    Algorithm::kTokenBucket,      Algorithm::kGcra,
    Algorithm::kLeakyBucket,      Algorithm::kFixedWindow,
    Algorithm::kSlidingWindowLog, Algorithm::kSlidingWindowCounter,
};

// The client's key names: "fg:<short name>:{<key>}" (RedisStore::redis_key).
std::string key_of(Algorithm algorithm, std::string_view key) {
  return RedisStore::redis_key(algorithm, key);
}

bool is_debt_meter(Algorithm a) {
  return a == Algorithm::kTokenBucket || a == Algorithm::kGcra || a == Algorithm::kLeakyBucket;
}

std::int64_t now_wall_us() {
  return std::chrono::duration_cast<Micros>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// One redis-server for the whole binary, killed by PID at exit.
testing::RedisServer& shared_server() {
  static testing::RedisServer server;
  return server;
}

// ---------------------------------------------------------------------------------------------
// Calling the scripts, and reading decisions and states as comparable text.

std::string duration_text(Micros d) { return d == kNever ? "never" : std::to_string(d.count()); }

std::string describe(const Decision& d) {
  const std::string_view reason = to_string(d.reason);
  return std::string(d.allowed ? "allowed" : "denied") +
         " reason=" + std::string(reason.empty() ? "none" : reason) +
         " remaining=" + std::to_string(d.remaining) +
         " reset_after=" + duration_text(d.reset_after) +
         " retry_after=" + duration_text(d.retry_after) + " delay=" + duration_text(d.delay);
}

// decision_at(): the `index`th decision of a call's reply (nullopt and `error` set if malformed).
std::optional<Decision> decision_at(const redisReply* r, std::size_t index, std::size_t count,
                                    const Policy& policy, std::string& error) {
  if (r->type == REDIS_REPLY_ERROR) {
    error = std::string("error reply: ") + r->str;
    return std::nullopt;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 6 * count) {
    error = "not an array of " + std::to_string(6 * count);
    return std::nullopt;
  }
  for (std::size_t i = 6 * index; i < 6 * index + 6; ++i) {
    if (r->element[i]->type != REDIS_REPLY_INTEGER) {
      error = "element " + std::to_string(i) + " is not an integer";
      return std::nullopt;
    }
  }
  auto at = [&](std::size_t i) { return r->element[6 * index + i]->integer; };
  auto micros = [](long long v) { return v == -1 ? kNever : Micros{v}; };
  Decision d;
  d.allowed = at(0) == 1;
  d.reason = static_cast<DenyReason>(at(1));
  d.limit = policy.limit();
  d.remaining = static_cast<std::uint64_t>(at(2));
  d.reset_after = micros(at(3));
  d.retry_after = micros(at(4));
  d.delay = micros(at(5));
  return d;
}

// decision_from(): a one-check call's reply as a Decision.
std::optional<Decision> decision_from(const redisReply* r, const Policy& policy,
                                      std::string& error) {
  return decision_at(r, 0, 1, policy, error);
}

std::string describe_reply(const redisReply* r, const Policy& policy) {
  std::string error;
  const auto d = decision_from(r, policy, error);
  return d ? describe(*d) : error;
}

// describe_replies(): each check's decision in a call's reply, or what is wrong with the reply.
std::vector<std::string> describe_replies(const redisReply* r, const std::vector<Check>& checks) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < checks.size(); ++i) {
    std::string error;
    const auto d = decision_at(r, i, checks.size(), checks[i].policy, error);
    out.push_back(d ? describe(*d) : error);
  }
  return out;
}

// Little-endian fields as Lua's struct.pack writes them ("<i7", "<I4").
std::int64_t field(std::string_view bytes, std::size_t at, std::size_t size, bool is_signed) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < size; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(bytes[at + i])} << (8 * i);
  }
  if (is_signed && size < 8 && ((v >> (8 * size - 1)) & 1) != 0)
    v |= ~std::uint64_t{0} << (8 * size);
  return static_cast<std::int64_t>(v);
}

// A debt meter's 12 bytes (debt_meter.lua, "<I3I3I6"): debt mod 2^24, stamp mod 2^24, then
// debt / 2^24 * 2^22 + stamp mod 2^46 / 2^24. The stamp is the time nearest to `now` with the
// stored residue mod 2^46, as the script reads it.
constexpr std::int64_t kStampModulus = std::int64_t{1} << 46;
struct StoredDebt {
  std::int64_t debt = 0;
  std::int64_t stamp = 0;
};
StoredDebt unpack_debt(std::string_view v, std::int64_t now) {
  const std::int64_t high = field(v, 6, 6, false);
  const std::int64_t residue =
      ((high & ((std::int64_t{1} << 22) - 1)) << 24) | field(v, 3, 3, false);
  std::int64_t behind = ((now - residue) % kStampModulus + kStampModulus) % kStampModulus;
  if (behind >= kStampModulus / 2) behind -= kStampModulus;
  return {((high >> 22) << 24) | field(v, 0, 3, false), now - behind};
}

// The millisecond after which Redis drops the production variant's key written at `now` (PXAT
// ceil((now + reset_after) / 1 ms), or PX 365 days for never). The test-time debt meters append it
// to their state and read a key past it as absent.
std::int64_t production_expiry_ms(std::int64_t now, Micros reset_after) {
  if (reset_after == kNever) return now / 1000 + kNeverTtlMs;
  return ceil_div(now + reset_after.count(), 1000);
}

// The C++ state of a compact algorithm, in the words the stored state is described with.
std::string describe_state(Algorithm a, const core::CompactState& s) {
  if (s.is_fresh()) return "absent";
  if (is_debt_meter(a)) {
    const auto t = std::bit_cast<core::DebtState>(s);
    return "debt=" + std::to_string(t.debt) + " stamp=" + std::to_string(t.stamp_us);
  }
  if (a == Algorithm::kFixedWindow) {
    const auto t = std::bit_cast<core::FixedWindowState>(s);
    return "start=" + std::to_string(t.start_us) + " count=" + std::to_string(t.count);
  }
  const auto t = std::bit_cast<core::SlidingCounterState>(s);
  return "start=" + std::to_string(t.start_us) + " current=" + std::to_string(t.current) +
         " previous=" + std::to_string(t.previous);
}

// The test-time script's key (GET reply) at `now`, described like describe_state(); a debt
// meter's also names the production expiry the test-time variant appends.
std::string describe_stored(Algorithm a, const redisReply* r, std::int64_t now) {
  if (r->type == REDIS_REPLY_NIL) return "absent";
  if (r->type != REDIS_REPLY_STRING) return "not a string";
  const std::string_view v(r->str, r->len);
  if (is_debt_meter(a)) {
    if (v.size() != 12 + 7) return "malformed: " + std::to_string(v.size()) + " bytes";
    const StoredDebt t = unpack_debt(v, now);
    return "debt=" + std::to_string(t.debt) + " stamp=" + std::to_string(t.stamp) +
           " expires_ms=" + std::to_string(field(v, 12, 7, true));
  }
  if (a == Algorithm::kFixedWindow) {
    if (v.size() != 11) return "malformed: " + std::to_string(v.size()) + " bytes";
    return "start=" + std::to_string(field(v, 0, 7, true)) +
           " count=" + std::to_string(field(v, 7, 4, false));
  }
  if (v.size() != 15) return "malformed: " + std::to_string(v.size()) + " bytes";
  return "start=" + std::to_string(field(v, 0, 7, true)) +
         " current=" + std::to_string(field(v, 7, 4, false)) +
         " previous=" + std::to_string(field(v, 11, 4, false));
}

std::string describe_log(const core::SlidingLog& log) {
  if (log.empty()) return "absent";
  std::string out = "total=" + std::to_string(log.total()) + " entries=";
  for (const auto& e : log.entries()) {
    out += std::to_string(e.at_us) + "x" + std::to_string(e.count) + " ";
  }
  return out;
}

// The script's log: GET of the meta key and ZRANGE 0 -1 WITHSCORES of the sorted set.
std::string describe_stored_log(const redisReply* meta, const redisReply* entries) {
  if (meta->type == REDIS_REPLY_NIL) {
    return entries->type == REDIS_REPLY_ARRAY && entries->elements == 0 ? "absent"
                                                                        : "entries without meta";
  }
  if (meta->type != REDIS_REPLY_STRING || meta->len != 11) return "malformed meta";
  std::string out =
      "total=" + std::to_string(field(std::string_view(meta->str, meta->len), 0, 4, false)) +
      " entries=";
  for (std::size_t i = 0; i + 1 < entries->elements; i += 2) {
    const std::string_view member(entries->element[i]->str, entries->element[i]->len);
    const std::string score(entries->element[i + 1]->str, entries->element[i + 1]->len);
    if (member.size() != 11) return "malformed entry";
    const std::int64_t at = field(member, 0, 7, true);
    if (std::to_string(at) != score) return "entry " + std::to_string(at) + " scored " + score;
    out += std::to_string(at) + "x" + std::to_string(field(member, 7, 4, false)) + " ";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Random policies and sequences.

std::int64_t pick(Rng& rng, std::int64_t lo, std::int64_t hi) {
  return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
}

double log_uniform(Rng& rng, double lo, double hi) {
  return std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng));
}

Micros random_window(Rng& rng) {
  switch (pick(rng, 0, 9)) {
    case 0:
      return 1ms;
    case 1:
      return Micros{pick(rng, 1'000, 50'000)};
    case 2:
      return 1s;
    case 3:
      return Micros{pick(rng, 100'000, 120'000'000)};
    case 4:
      return 1h;
    case 5:
      return 24h;
    case 6:  // above 2^37 us: weight_shift > 0
      return Micros{pick(rng, std::int64_t{1} << 37, kMaxWindow.count())};
    case 7:
      return kMaxWindow;
    case 8:
      return Micros{static_cast<std::int64_t>(log_uniform(rng, 1e3, 3.1536e13))};
    default:
      return 60s;
  }
}

std::int64_t random_limit(Rng& rng, std::int64_t max) {
  switch (pick(rng, 0, 7)) {
    case 0:
      return 1;
    case 1:
      return std::min<std::int64_t>(max, pick(rng, 2, 10));
    case 2:
    case 3:
      return std::min<std::int64_t>(max, pick(rng, 1, 100));
    case 4:
      return std::min<std::int64_t>(max, pick(rng, 1, 10'000));
    case 5:
      return max;
    case 6:
      return pick(rng, 1, max);
    default:
      return std::clamp<std::int64_t>(
          static_cast<std::int64_t>(log_uniform(rng, 1, static_cast<double>(max))), 1, max);
  }
}

double random_rate(Rng& rng) {  // per second, > 0
  switch (pick(rng, 0, 6)) {
    case 0:
      return 0.5;
    case 1:
      return 1000;
    case 2:
      return static_cast<double>(pick(rng, 1, 100));
    case 3:
      return log_uniform(rng, 1e-3, 10);
    case 4:
      return log_uniform(rng, 1, 1e6);
    case 5:
      return log_uniform(rng, 1e6, kMaxRate);
    default:
      return kMaxRate;
  }
}

Policy random_policy(Algorithm a, Rng& rng) {
  const auto max = static_cast<std::int64_t>(kMaxLimit);
  for (;;) {  // a rate too slow for its capacity is refused: draw again
    Result<Policy> p = Policy::token_bucket(1, 1);
    switch (a) {
      case Algorithm::kTokenBucket:
        p = Policy::token_bucket(random_limit(rng, max),
                                 pick(rng, 0, 9) == 0 ? 0.0 : random_rate(rng));
        break;
      case Algorithm::kGcra:
        p = Policy::gcra(random_limit(rng, max), random_window(rng),
                         pick(rng, 0, 1) == 0
                             ? std::nullopt
                             : std::optional<std::int64_t>(random_limit(rng, max)));
        break;
      case Algorithm::kLeakyBucket:
        p = Policy::leaky_bucket(random_limit(rng, max), random_rate(rng));
        break;
      case Algorithm::kFixedWindow:
        p = Policy::fixed_window(random_limit(rng, max), random_window(rng));
        break;
      case Algorithm::kSlidingWindowLog:
        // Half of them above 128 entries' worth, where Redis turns a listpack into a skiplist.
        p = Policy::sliding_window_log(
            pick(rng, 0, 1) == 0 ? random_limit(rng, 300) : pick(rng, 129, 300),
            random_window(rng));
        break;
      case Algorithm::kSlidingWindowCounter:
        p = Policy::sliding_window_counter(random_limit(rng, max), random_window(rng));
        break;
    }
    if (p) return *p;
  }
}

// The time scale of a policy: its window, or the time an empty bucket takes to refill.
std::int64_t span_of(const Policy& p) {
  const std::int64_t w = p.window().count();
  return w > 0 ? w : 1'000'000;  // a bucket that never refills: any scale
}

// next_time(): with `trickle`, mostly steps of about the time one unit takes to come back.
std::int64_t next_time(Rng& rng, const Policy& p, std::int64_t now, std::int64_t& latest,
                       bool trickle = false) {
  const std::int64_t span = span_of(p);
  const std::int64_t unit = std::max<std::int64_t>(1, span / static_cast<std::int64_t>(p.limit()));
  if (trickle && pick(rng, 0, 39) != 0) {
    now += pick(rng, 1, unit);
    latest = std::max(latest, now);
    return now;
  }
  switch (pick(rng, 0, 19)) {
    case 0:
    case 1:
    case 2:
      break;  // the same microsecond
    case 3:
    case 4:
    case 5:
    case 6:
    case 7:
      now += pick(rng, 1, 2 * unit);  // a few units refill
      break;
    case 8:
    case 9:
    case 10:
      now += pick(rng, 1, 2'000);
      break;
    case 11:
    case 12:
    case 13:
    case 14:
      now += pick(rng, 1, span / 4 + 1);
      break;
    case 15:
      now += pick(rng, span / 2, span + span / 2);
      break;
    case 16:  // around the next window boundary
      now = (now / span + 1) * span + pick(rng, -1, 1);
      break;
    case 17:
      now += pick(rng, span, 3 * span);  // windows roll, buckets refill
      break;
    case 18:
      now -= pick(rng, 1, span / 2 + 1);  // the clock steps back
      break;
    default:
      now -= pick(rng, 1, 2 * unit);
      break;
  }
  if (now < latest - span) now = latest;  // keep lags bounded, as the model test does
  if (now > kLatestTestTime) now = latest;
  latest = std::max(latest, now);
  return now;
}

// next_cost(): with `trickle`, mostly single units, so that logs fill up entry by entry.
std::uint64_t next_cost(Rng& rng, const Policy& p, bool trickle = false) {
  const auto limit = static_cast<std::int64_t>(p.limit());
  if (trickle && pick(rng, 0, 39) != 0)
    return static_cast<std::uint64_t>(pick(rng, 0, 9) == 0 ? 0 : 1);
  switch (pick(rng, 0, 19)) {
    case 0:
    case 1:
      return 0;  // a peek
    case 9:
      return p.limit();
    case 10:
      return p.limit() + 1;
    case 11:
    case 12:
    case 13:
    case 14:
    case 15:
      return static_cast<std::uint64_t>(pick(rng, 0, limit + 1));
    case 16:
      return static_cast<std::uint64_t>(pick(rng, 1, std::max<std::int64_t>(1, limit / 8)));
    case 17: {
      constexpr std::uint64_t kHuge[] = {std::uint64_t{1} << 40, (std::uint64_t{1} << 53) + 1,
                                         ~std::uint64_t{0}};
      return kHuge[pick(rng, 0, 2)];
    }
    case 18:
    case 19:
      return static_cast<std::uint64_t>(pick(rng, 1, 3));
    default:
      return 1;
  }
}

std::uint64_t seed_for(Algorithm a, std::uint64_t salt) {
  std::uint64_t base = 20'250'101;
  if (const char* env = std::getenv("FLOODGATE_TEST_SEED"); env != nullptr && *env != '\0') {
    base = std::strtoull(env, nullptr, 10);
  }
  return base * 1'000'003 + static_cast<std::uint64_t>(a) * 7919 + salt;
}

// ---------------------------------------------------------------------------------------------
// The differential driver: one key per policy, a sequence of steps pipelined to Redis, then each
// reply compared with what core::decide() said at that step.

struct Checks {
  int policies = 0;
  int steps = 0;
  bool state = false;  // the stored state equals the C++ state
  bool ttl = false;    // PTTL of the key(s)
};

// The keys' expected PTTL in test-time mode, or -2 (no key) when the state is fresh.
std::int64_t expected_ttl_ms(bool fresh, Micros reset_after) {
  if (fresh) return -2;
  if (reset_after == kNever) return kNeverTtlMs;
  return std::max(ceil_div(reset_after.count(), 1000), kTestTtlFloorMs);
}

struct Step {
  std::int64_t now = 0;
  std::uint64_t cost = 0;
  Policy policy;
  std::string decision;
  std::string state;
  std::int64_t ttl_ms = 0;
};

// What a run exercised, printed so a reader sees the sequences reach every branch.
struct Coverage {
  int allowed = 0, limited = 0, never_passes = 0, behind = 0, reloads = 0, carried_over = 0,
      expired = 0;
  std::size_t longest_log = 0;
};

// Whether a state carried over from another policy holds more than `policy` admits.
bool over_limit(const Policy& policy, const core::CompactState& compact,
                const core::SlidingLog& log) {
  const std::uint64_t limit = policy.limit();
  switch (policy.algorithm()) {
    case Algorithm::kSlidingWindowLog:
      return log.total() > limit;
    case Algorithm::kFixedWindow:
      return std::bit_cast<core::FixedWindowState>(compact).count > limit;
    case Algorithm::kSlidingWindowCounter:
      return std::bit_cast<core::SlidingCounterState>(compact).current > limit;
    default:
      return std::bit_cast<core::DebtState>(compact).debt >
             static_cast<std::int64_t>(limit) * policy.interval();
  }
}

void run_differential(Algorithm algorithm, std::uint64_t seed, const Checks& checks) {
  Coverage seen;
  RedisClient redis(shared_server().port());
  const std::string sha = redis.load(redis::script_text(algorithm, /*test_time=*/true));
  const bool is_log = algorithm == Algorithm::kSlidingWindowLog;
  Rng rng(seed);
  // Real time the scripts' keys may age during one policy's pipeline before PTTL is read.
  constexpr std::int64_t kTtlSlackMs = 2'000;

  // Logs get longer sequences (fewer of them), to grow long.
  const int policies = is_log ? checks.policies / 2 : checks.policies;
  const int steps_per_policy = is_log ? checks.steps * 2 : checks.steps;
  for (int n = 0; n < policies; ++n) {
    Policy policy = random_policy(algorithm, rng);
    const std::string key =
        key_of(algorithm, "diff:" + std::to_string(seed) + ":" + std::to_string(n));
    core::CompactState compact;
    core::SlidingLog log;
    std::int64_t now = kEpoch2026 + pick(rng, 0, std::int64_t{400} * 24 * 3600 * 1'000'000);
    std::int64_t latest = now;
    std::int64_t expiry_ms = 0;  // debt meters: when production Redis drops the key
    const bool trickle = pick(rng, 0, 2) == 0;

    std::vector<Step> steps;
    steps.reserve(static_cast<std::size_t>(steps_per_policy));
    for (int i = 0; i < steps_per_policy; ++i) {
      if (!trickle && pick(rng, 0, 39) == 0) {  // a rule reloaded: the key keeps its state
        policy = random_policy(algorithm, rng);
        ++seen.reloads;
      }
      Step s{next_time(rng, policy, now, latest, trickle), 0, policy, "", "", 0};
      now = s.now;
      seen.behind += now < latest ? 1 : 0;
      s.cost = next_cost(rng, policy, trickle);
      // The test-time debt meters forget a key once production Redis would have expired it (see
      // debt_meter.lua), and so does the reference here. Past that moment its debt has drained
      // under the policy that wrote it: only a reload to a policy that drains slower tells.
      if (is_debt_meter(algorithm) && !compact.is_fresh() && now / 1000 > expiry_ms) {
        compact = core::CompactState{};
        ++seen.expired;
      }
      seen.carried_over += over_limit(policy, compact, log) ? 1 : 0;
      const Decision d = is_log ? core::decide(policy, log, Micros{now}, s.cost)
                                : core::decide(policy, compact, Micros{now}, s.cost);
      s.decision = describe(d);
      seen.allowed += d.allowed ? 1 : 0;
      seen.limited += d.reason == DenyReason::kLimited ? 1 : 0;
      seen.never_passes += d.retry_after == kNever ? 1 : 0;
      seen.longest_log = std::max(seen.longest_log, log.entry_count());
      const bool fresh = is_log ? log.empty() : compact.is_fresh();
      s.state = is_log ? describe_log(log) : describe_state(algorithm, compact);
      if (is_debt_meter(algorithm) && !fresh) {
        expiry_ms = production_expiry_ms(now, d.reset_after);
        s.state += " expires_ms=" + std::to_string(expiry_ms);
      }
      s.ttl_ms = expected_ttl_ms(fresh, d.reset_after);

      redis.append(eval_command(sha, policy, key, std::to_string(now), s.cost));
      if (checks.state) {
        if (is_log) {
          redis.append({"GET", key + ":m"});
          redis.append({"ZRANGE", key, "0", "-1", "WITHSCORES"});
        } else {
          redis.append({"GET", key});
        }
      }
      if (checks.ttl) {
        redis.append({"PTTL", key});
        if (is_log) redis.append({"PTTL", key + ":m"});
      }
      steps.push_back(std::move(s));
    }

    bool failed = false;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      const Reply decision = redis.read();
      Reply meta, entries, state;
      std::vector<std::int64_t> ttls;
      if (checks.state) {
        if (is_log) {
          meta = redis.read();
          entries = redis.read();
        } else {
          state = redis.read();
        }
      }
      if (checks.ttl) {
        for (int k = 0; k < (is_log ? 2 : 1); ++k) ttls.push_back(redis.read()->integer);
      }
      if (failed) continue;  // drain the pipeline; one report per policy is enough

      SCOPED_TRACE(::testing::Message()
                   << "seed " << seed << " policy #" << n << " " << s.policy << " step " << i
                   << " now " << s.now << " cost " << s.cost << " key " << key);
      const std::string got = describe_reply(decision.get(), s.policy);
      EXPECT_EQ(got, s.decision);
      failed = got != s.decision;
      if (checks.state) {
        const std::string stored = is_log ? describe_stored_log(meta.get(), entries.get())
                                          : describe_stored(algorithm, state.get(), s.now);
        EXPECT_EQ(stored, s.state);
        failed = failed || stored != s.state;
      }
      for (const std::int64_t ttl : ttls) {
        if (s.ttl_ms == -2) {
          EXPECT_EQ(ttl, -2) << "the state is fresh: no key";
          failed = failed || ttl != -2;
        } else {
          EXPECT_LE(ttl, s.ttl_ms);
          EXPECT_GT(ttl, s.ttl_ms - kTtlSlackMs);
          failed = failed || ttl > s.ttl_ms || ttl <= s.ttl_ms - kTtlSlackMs;
        }
      }
    }
    redis.command({"DEL", key, key + ":m"});
    if (::testing::Test::HasFailure()) return;
  }
  std::cout << "[ coverage ] " << to_string(algorithm) << ": " << policies * steps_per_policy
            << " steps, " << seen.allowed << " allowed, " << seen.limited << " limited, "
            << seen.never_passes << " never pass, " << seen.behind
            << " behind the key's latest time, " << seen.reloads << " policy reloads ("
            << seen.carried_over << " steps over the new limit)";
  if (is_debt_meter(algorithm)) std::cout << ", " << seen.expired << " keys expired";
  if (algorithm == Algorithm::kSlidingWindowLog) std::cout << ", longest log " << seen.longest_log;
  std::cout << "\n";
}

std::string algorithm_name(const ::testing::TestParamInfo<Algorithm>& info) {
  return std::string(to_string(info.param));
}

// ---------------------------------------------------------------------------------------------

class ScriptsMatchCore : public ::testing::TestWithParam<Algorithm> {};

TEST_P(ScriptsMatchCore, DecisionsAndStatesOverRandomPoliciesAndSequences) {
  run_differential(GetParam(), seed_for(GetParam(), 1),
                   Checks{.policies = 250, .steps = 160, .state = true, .ttl = false});
}

// Test-time scripts set PX max(ceil(reset_after in ms), 60 s) (365 days for never), so that
// simulated time never outruns a key's real expiry; production scripts expire at the exact
// millisecond (ProductionScripts below).
TEST_P(ScriptsMatchCore, KeysExistOnlyWhileTheStateIsNotFreshAndExpireWithIt) {
  run_differential(GetParam(), seed_for(GetParam(), 2),
                   Checks{.policies = 40, .steps = 150, .state = false, .ttl = true});
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, ScriptsMatchCore, ::testing::ValuesIn(kAlgorithms),
                         algorithm_name);

// ---------------------------------------------------------------------------------------------
// The production variants: Redis TIME, whatever ARGV[1] says.

// A policy whose key lives about an hour after one request of cost 1.
Policy hour_policy(Algorithm a) {
  switch (a) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(10, 10.0 / 3600).value();
    case Algorithm::kGcra:
      return Policy::gcra(10, 1h).value();
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(10, 10.0 / 3600).value();
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(10, 1h).value();
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(10, 1h).value();
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(10, 1h).value();
  }
  return Policy::token_bucket(1, 1).value();
}

// The time the script decided at, read back from the state it stored (nullopt when the state
// does not hold it exactly: the sliding counter keeps only its window's start). A debt meter's
// stamp is read nearest to `near`.
std::optional<std::int64_t> decided_at(RedisClient& redis, Algorithm a, const std::string& key,
                                       const Decision& d, std::int64_t window_us,
                                       std::int64_t near) {
  if (a == Algorithm::kSlidingWindowLog) {
    const Reply meta = redis.command({"GET", key + ":m"});
    if (meta->type != REDIS_REPLY_STRING || meta->len != 11) return std::nullopt;
    return field(std::string_view(meta->str, meta->len), 4, 7, true);  // latest
  }
  const Reply r = redis.command({"GET", key});
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;
  const std::string_view v(r->str, r->len);
  if (is_debt_meter(a)) return unpack_debt(v, near).stamp;
  if (a == Algorithm::kFixedWindow) {  // reset_after = start + window - now
    return field(v, 0, 7, true) + window_us - d.reset_after.count();
  }
  return std::nullopt;
}

class ProductionScripts : public ::testing::TestWithParam<Algorithm> {};

TEST_P(ProductionScripts, IgnoreTheExplicitTimeAndReadRedisTime) {
  const Algorithm a = GetParam();
  const Policy policy = hour_policy(a);
  RedisClient redis(shared_server().port());
  const std::string production = redis.load(redis::script_text(a, /*test_time=*/false));
  const std::string test_time = redis.load(redis::script_text(a, /*test_time=*/true));
  ASSERT_NE(production, test_time);
  const std::string key = key_of(a, "production-time");
  const std::string future =
      std::to_string(now_wall_us() + std::int64_t{10} * 365 * 86'400'000'000);

  for (const std::string& now_arg : {future, std::string()}) {
    SCOPED_TRACE("ARGV[1] = \"" + now_arg + "\"");
    redis.command({"DEL", key, key + ":m"});
    const std::int64_t before = now_wall_us();
    const Reply reply = redis.command(eval_command(production, policy, key, now_arg, 1));
    const std::int64_t after = now_wall_us();
    std::string error;
    const auto d = decision_from(reply.get(), policy, error);
    ASSERT_TRUE(d) << error;
    EXPECT_TRUE(d->allowed);
    // About an hour from now, as seen from now: not from ten years ahead.
    EXPECT_GT(d->reset_after, 0us);
    EXPECT_LE(d->reset_after, 2 * policy.window());  // the sliding counter: two windows
    const std::int64_t expires_ms = redis.integer({"PEXPIRETIME", key});
    EXPECT_GE(expires_ms, before / 1000 + d->reset_after.count() / 1000);
    EXPECT_LE(expires_ms, ceil_div(after + d->reset_after.count(), 1000));
    if (const auto at = decided_at(redis, a, key, *d, policy.window().count(), before)) {
      EXPECT_GE(*at, before);
      EXPECT_LE(*at, after);
    }
  }

  // The test-time variant does take the explicit time.
  redis.command({"DEL", key, key + ":m"});
  const Reply reply = redis.command(eval_command(test_time, policy, key, future, 1));
  std::string error;
  const auto d = decision_from(reply.get(), policy, error);
  ASSERT_TRUE(d) << error;
  if (const auto at = decided_at(redis, a, key, *d, policy.window().count(), std::stoll(future))) {
    EXPECT_EQ(*at, std::stoll(future));
  }
  redis.command({"DEL", key, key + ":m"});
}

// Production keys expire at the millisecond their state becomes fresh (PXAT ceil((now +
// reset_after) / 1 ms)), for every decision of a random sequence on Redis' own clock.
TEST_P(ProductionScripts, KeysExpireAtTheMillisecondTheStateBecomesFresh) {
  const Algorithm a = GetParam();
  RedisClient redis(shared_server().port());
  const std::string sha = redis.load(redis::script_text(a, /*test_time=*/false));
  Rng rng(seed_for(a, 3));
  for (int n = 0; n < 30; ++n) {
    const Policy policy = random_policy(a, rng);
    const std::string key = key_of(a, "production-ttl:" + std::to_string(n));
    for (int i = 0; i < 20; ++i) {
      const std::uint64_t cost = next_cost(rng, policy);
      SCOPED_TRACE(::testing::Message() << policy << " call " << i << " cost " << cost);
      const std::int64_t before = now_wall_us();
      const Reply reply = redis.command(eval_command(sha, policy, key, "", cost));
      const std::int64_t after = now_wall_us();
      std::string error;
      const auto d = decision_from(reply.get(), policy, error);
      ASSERT_TRUE(d) << error;
      // Both keys of a log in one transaction: neither expires between the two reads.
      redis.append({"MULTI"});
      redis.append({"PEXPIRETIME", key});
      redis.append({"PEXPIRETIME", key + ":m"});
      redis.append({"EXEC"});
      for (int k = 0; k < 3; ++k) redis.read();
      const Reply exec = redis.read();
      const std::int64_t checked = now_wall_us();
      ASSERT_EQ(exec->type, REDIS_REPLY_ARRAY);
      const std::int64_t expires_ms = exec->element[0]->integer;
      const std::int64_t meta_expires_ms = exec->element[1]->integer;
      EXPECT_EQ(meta_expires_ms, a == Algorithm::kSlidingWindowLog ? expires_ms : -2);
      if (d->reset_after == 0us) {
        EXPECT_EQ(expires_ms, -2) << "a fresh state leaves no key";
      } else if (d->reset_after == kNever) {
        EXPECT_GE(expires_ms, before / 1000 + kNeverTtlMs);
        EXPECT_LE(expires_ms, after / 1000 + kNeverTtlMs + 1);
      } else if (expires_ms == -2) {
        // Already gone (windows of a millisecond): only once its moment had passed.
        EXPECT_LT(ceil_div(before + d->reset_after.count(), 1000), checked / 1000 + 1);
      } else {
        EXPECT_GE(expires_ms, ceil_div(before + d->reset_after.count(), 1000));
        EXPECT_LE(expires_ms, ceil_div(after + d->reset_after.count(), 1000));
      }
    }
    redis.command({"DEL", key, key + ":m"});
  }
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, ProductionScripts, ::testing::ValuesIn(kAlgorithms),
                         algorithm_name);

// ---------------------------------------------------------------------------------------------
// Many checks in one call: the decisions of the same checks sent one by one at the call's time.

// A key of a batch run, with the C++ state and the policy it was last checked under.
struct BatchKey {
  std::string key;
  Policy policy;
  core::CompactState compact;
  core::SlidingLog log;
  std::int64_t expiry_ms = 0;  // debt meters: when production Redis drops the key
};

// What one call should answer and leave behind: every check's decision and every key's state.
struct BatchStep {
  std::int64_t now = 0;
  std::vector<Check> checks;
  std::vector<std::string> decisions;
  std::vector<std::string> states;  // per key of the run, in its order
  // Debt meters: the time a key's stamp is read nearest to. A key the call left alone may have
  // expired in production (the test-time script reads it as absent) a year ago, its stamp further
  // behind than 2^45 us: it is read nearest to that expiry, still exact.
  std::vector<std::int64_t> read_at;
};

struct BatchCoverage {
  int calls = 0, checks = 0, repeated = 0, allowed = 0, limited = 0, behind = 0, switched = 0;
  std::size_t longest_log = 0;
};

// run_batches(): `runs` runs of `calls` calls each; a run shares 1 to 6 keys, each with its own
// policy (switched for another in one check of forty), among calls of 1 to 40 checks; node_wide:
// the calls in the Redis Cluster form (keys after the arguments).
void run_batches(Algorithm algorithm, std::uint64_t seed, int runs, int calls,
                 bool node_wide = false) {
  BatchCoverage seen;
  RedisClient redis(shared_server().port());
  const std::string sha = redis.load(redis::script_text(algorithm, /*test_time=*/true));
  const bool is_log = algorithm == Algorithm::kSlidingWindowLog;
  Rng rng(seed);

  for (int run = 0; run < runs; ++run) {
    // A third of the log runs grow one long log: one key, of 200 to 300 entries' worth (above 128
    // entries Redis turns a listpack into a skiplist), a call of one or two checks at a time.
    const bool long_log = is_log && run % 3 == 0;
    std::vector<BatchKey> keys;
    const std::int64_t key_count = long_log ? 1 : pick(rng, 1, 6);
    for (std::int64_t j = 0; j < key_count; ++j) {
      Policy policy = random_policy(algorithm, rng);
      while (long_log && policy.limit() < 200) policy = random_policy(algorithm, rng);
      keys.push_back({key_of(algorithm, "batch:" + std::to_string(seed) + ":" +
                                            std::to_string(run) + ":" + std::to_string(j)),
                      policy, core::CompactState{}, core::SlidingLog{}});
    }
    std::int64_t now = kEpoch2026 + pick(rng, 0, std::int64_t{400} * 24 * 3600 * 1'000'000);
    std::int64_t latest = now;
    const bool trickle = long_log || pick(rng, 0, 2) == 0;

    std::vector<BatchStep> steps;
    for (int call = 0; call < calls; ++call) {
      BatchStep step;
      // Time moves between calls (forwards, not at all, or backwards) at the scale of one key.
      now = next_time(rng, keys[static_cast<std::size_t>(pick(rng, 0, key_count - 1))].policy, now,
                      latest, trickle);
      step.now = now;
      seen.behind += now < latest ? 1 : 0;
      const int n = long_log               ? static_cast<int>(pick(rng, 1, 2))
                    : pick(rng, 0, 4) == 0 ? 1
                                           : static_cast<int>(pick(rng, 1, 40));
      std::vector<int> uses(keys.size(), 0);
      for (int i = 0; i < n; ++i) {
        const auto j = static_cast<std::size_t>(pick(rng, 0, key_count - 1));
        BatchKey& k = keys[j];
        seen.repeated += uses[j]++ > 0 ? 1 : 0;
        if (!long_log && pick(rng, 0, 39) == 0) {  // a rule reloaded: the key keeps its state
          k.policy = random_policy(algorithm, rng);
          ++seen.switched;
        }
        const std::uint64_t cost = next_cost(rng, k.policy, trickle);
        if (is_debt_meter(algorithm) && !k.compact.is_fresh() && now / 1000 > k.expiry_ms) {
          k.compact = core::CompactState{};  // production Redis would have expired it
        }
        const Decision d = is_log ? core::decide(k.policy, k.log, Micros{now}, cost)
                                  : core::decide(k.policy, k.compact, Micros{now}, cost);
        if (is_debt_meter(algorithm) && !k.compact.is_fresh()) {
          k.expiry_ms = production_expiry_ms(now, d.reset_after);
        }
        step.checks.push_back({k.policy, k.key, cost});
        step.decisions.push_back(describe(d));
        seen.allowed += d.allowed ? 1 : 0;
        seen.limited += d.reason == DenyReason::kLimited ? 1 : 0;
        seen.longest_log = std::max(seen.longest_log, k.log.entry_count());
      }
      redis.append(batch_command(sha, step.checks, std::to_string(now), node_wide));
      for (const BatchKey& k : keys) {
        if (is_log) {
          step.states.push_back(describe_log(k.log));
          redis.append({"GET", k.key + ":m"});
          redis.append({"ZRANGE", k.key, "0", "-1", "WITHSCORES"});
        } else {
          std::string state = describe_state(algorithm, k.compact);
          if (is_debt_meter(algorithm) && !k.compact.is_fresh()) {
            state += " expires_ms=" + std::to_string(k.expiry_ms);
          }
          step.states.push_back(state);
          step.read_at.push_back(std::min(now, k.expiry_ms * 1000));
          redis.append({"GET", k.key});
        }
      }
      seen.checks += n;
      ++seen.calls;
      steps.push_back(std::move(step));
    }

    bool failed = false;
    for (std::size_t c = 0; c < steps.size(); ++c) {
      const BatchStep& step = steps[c];
      const Reply reply = redis.read();
      std::vector<std::string> stored;
      for (std::size_t j = 0; j < keys.size(); ++j) {
        if (is_log) {
          const Reply meta = redis.read();
          const Reply entries = redis.read();
          stored.push_back(describe_stored_log(meta.get(), entries.get()));
        } else {
          stored.push_back(describe_stored(algorithm, redis.read().get(), step.read_at[j]));
        }
      }
      if (failed) continue;  // drain the pipeline; one report per run is enough

      const std::vector<std::string> got = describe_replies(reply.get(), step.checks);
      for (std::size_t i = 0; i < step.checks.size() && !failed; ++i) {
        const Check& check = step.checks[i];
        EXPECT_EQ(got[i], step.decisions[i])
            << "seed " << seed << " run " << run << " call " << c << " (" << step.checks.size()
            << " checks) at " << step.now << ": check " << i << " " << check.policy << " cost "
            << check.cost << " key " << check.key;
        failed = got[i] != step.decisions[i];
      }
      for (std::size_t j = 0; j < keys.size() && !failed; ++j) {
        EXPECT_EQ(stored[j], step.states[j])
            << "seed " << seed << " run " << run << " call " << c << " at " << step.now
            << ": the state of " << keys[j].key << " after the call";
        failed = stored[j] != step.states[j];
      }
    }
    for (const BatchKey& k : keys) redis.command({"DEL", k.key, k.key + ":m"});
    if (::testing::Test::HasFailure()) return;
  }
  std::cout << "[ coverage ] " << to_string(algorithm) << ": " << seen.calls << " calls of "
            << seen.checks << " checks (" << seen.repeated << " of a key already checked in "
            << "the call, " << seen.switched << " under a switched policy), " << seen.allowed
            << " allowed, " << seen.limited << " limited, " << seen.behind
            << " calls behind the latest time";
  if (is_log) std::cout << ", longest log " << seen.longest_log;
  std::cout << "\n";
}

class ScriptBatches : public ::testing::TestWithParam<Algorithm> {};

TEST_P(ScriptBatches, DecideAsTheSameChecksOneByOneAndLeaveTheSameStates) {
  // Logs get fewer, longer runs: the entries of one call share its microsecond, so a log grows by
  // an entry a call, and past 128 entries Redis turns its listpack into a skiplist.
  const bool is_log = GetParam() == Algorithm::kSlidingWindowLog;
  run_batches(GetParam(), seed_for(GetParam(), 4), is_log ? 12 : 60, is_log ? 250 : 30);
}

// The node-wide form a cluster's master gets (no KEYS; on a standalone Redis every key is local):
// the same decisions and states as the calls with keys.
TEST_P(ScriptBatches, NodeWideCallsDecideAsCallsWithKeys) {
  const bool is_log = GetParam() == Algorithm::kSlidingWindowLog;
  run_batches(GetParam(), seed_for(GetParam(), 5), is_log ? 4 : 20, is_log ? 100 : 30,
              /*node_wide=*/true);
}

// A call with a wrong number of keys or arguments, or with a malformed argument in its third
// check, gets an error reply naming the argument and writes nothing: no key appears, and a key
// the call names keeps its value.
TEST_P(ScriptBatches, AMalformedCallGetsAnErrorReplyAndWritesNothing) {
  const Algorithm a = GetParam();
  const bool is_log = a == Algorithm::kSlidingWindowLog;
  const auto per_check = static_cast<std::size_t>(redis::key_count(a));
  RedisClient redis(shared_server().port());
  const std::string sha = redis.load(redis::script_text(a, /*test_time=*/true));
  const Policy policy = hour_policy(a);
  const std::string now = std::to_string(kEpoch2026);

  const std::string written = key_of(a, "malformed:written");
  redis.command({"DEL", written, written + ":m"});
  ASSERT_EQ(redis.command(eval_command(sha, policy, written, now, 1))->type, REDIS_REPLY_ARRAY);
  auto snapshot = [&] {
    std::string out = describe_stored(a, redis.command({"GET", written}).get(), kEpoch2026);
    if (is_log) {
      out = describe_stored_log(redis.command({"GET", written + ":m"}).get(),
                                redis.command({"ZRANGE", written, "0", "-1", "WITHSCORES"}).get());
    }
    return out;
  };
  const std::string before = snapshot();
  ASSERT_NE(before, "absent");

  std::vector<Check> checks = {{policy, written, 1}};
  for (int i = 1; i < 5; ++i) {
    checks.push_back({policy, key_of(a, "malformed:" + std::to_string(i)), 1});
  }
  const std::vector<std::string> good = batch_command(sha, checks, now);
  // argv(): the index in `good` of ARGV[m].
  const std::size_t keys = checks.size() * per_check;
  auto argv = [&](std::size_t m) { return 3 + keys + m - 1; };
  auto with = [&](std::size_t m, std::string value) {
    std::vector<std::string> args = good;
    args[argv(m)] = std::move(value);
    return args;
  };

  struct Case {
    std::string what;
    std::vector<std::string> args;
    std::string error;
  };
  std::vector<Case> cases;
  std::vector<std::string> args = good;
  args.pop_back();
  cases.push_back({"an argument short", args, "ARGV must hold the time and 4 arguments per check"});
  args = good;
  args.push_back("0");
  cases.push_back({"an argument more", args, "ARGV must hold the time and 4 arguments per check"});
  args = good;
  args.erase(args.begin() + static_cast<std::ptrdiff_t>(3 + keys - per_check),
             args.begin() + static_cast<std::ptrdiff_t>(3 + keys));
  args[2] = std::to_string(keys - per_check);
  cases.push_back(
      {"a check's keys short", args, "ARGV must hold the time and 4 arguments per check"});
  const std::string node_wide_error = "a call without KEYS must hold the time, then 4 arguments";
  cases.push_back({"no check", {"EVALSHA", sha, "0", now}, node_wide_error});
  args = batch_command(sha, checks, now, /*node_wide=*/true);
  args.pop_back();
  cases.push_back({"node-wide, a key short", args, node_wide_error});
  args = batch_command(sha, checks, now, /*node_wide=*/true);
  args[3 + 4 * 2 + 1] = "-1";  // the third check's cost
  cases.push_back({"node-wide, a cost of -1", args, "ARGV[10] (cost) must be a decimal integer"});
  if (is_log) {
    args = good;
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(3 + keys - 1));  // the last meta key
    args[2] = std::to_string(keys - 1);
    cases.push_back({"an odd number of keys", args, "sliding_window_log takes two keys per check"});
  }
  // The third check's arguments are ARGV[10] to ARGV[13].
  cases.push_back({"a cost of -1", with(10, "-1"), "ARGV[10] (cost) must be a decimal integer"});
  cases.push_back({"a cost of 1.5", with(10, "1.5"), "ARGV[10] (cost) must be a decimal integer"});
  cases.push_back({"a limit of 0", with(11, "0"), "ARGV[11] (limit) is out of range"});
  cases.push_back(
      {"a limit above 2^32 - 1", with(11, "4294967296"), "ARGV[11] (limit) is out of range"});
  if (is_debt_meter(a)) {
    cases.push_back({"an interval of 0", with(12, "0"), "ARGV[12] (interval) is out of range"});
    cases.push_back(
        {"ticks_per_us of x", with(13, "x"), "ARGV[13] (ticks_per_us) must be a decimal integer"});
    args = with(11, "4294967295");
    args[argv(12)] = std::to_string((std::int64_t{1} << 18) + 1);  // 2^50 + 2^32 - 2^18 - 1
    cases.push_back({"limit * interval above 2^50", args, "limit * interval must stay below 2^50"});
  } else {
    cases.push_back({"a window of 0", with(12, "0"), "ARGV[12] (window_us) is out of range"});
  }
  if (a == Algorithm::kSlidingWindowCounter) {
    cases.push_back(
        {"a weight_shift of 17", with(13, "17"), "ARGV[13] (weight_shift) is out of range"});
  }
  cases.push_back({"a time of 1.5", with(1, "1.5"), "ARGV[1] (now) must be a decimal integer"});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const Reply r = redis.command(c.args);
    ASSERT_EQ(r->type, REDIS_REPLY_ERROR) << describe_replies(r.get(), checks)[0];
    EXPECT_TRUE(std::string(r->str).starts_with("ERR floodgate: " + c.error)) << r->str;
    for (std::size_t i = 1; i < checks.size(); ++i) {
      EXPECT_EQ(redis.integer({"EXISTS", checks[i].key, checks[i].key + ":m"}), 0) << checks[i].key;
    }
    EXPECT_EQ(snapshot(), before);
  }
  // The same call, well formed, does write.
  EXPECT_EQ(redis.command(good)->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(redis.integer({"EXISTS", checks[4].key}), 1);
  for (const Check& c : checks) redis.command({"DEL", c.key, c.key + ":m"});
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, ScriptBatches, ::testing::ValuesIn(kAlgorithms),
                         algorithm_name);

// ---------------------------------------------------------------------------------------------

TEST(RedisScripts, VariantsDifferOnlyInTheirFirstLine) {
  for (const Algorithm a : kAlgorithms) {
    const std::string_view production = redis::script_text(a, false);
    const std::string_view test_time = redis::script_text(a, true);
    ASSERT_TRUE(production.starts_with("local FG_TEST_TIME = false\n")) << to_string(a);
    ASSERT_TRUE(test_time.starts_with("local FG_TEST_TIME = true\n")) << to_string(a);
    EXPECT_EQ(production.substr(production.find('\n')), test_time.substr(test_time.find('\n')));
  }
  EXPECT_EQ(redis::key_count(Algorithm::kSlidingWindowLog), 2);
  EXPECT_EQ(redis::key_count(Algorithm::kGcra), 1);
}

TEST(RedisScripts, MalformedArgumentsGetAStableErrorReply) {
  RedisClient redis(shared_server().port());
  const Policy policy = Policy::fixed_window(10, 1s).value();
  const std::string sha = redis.load(redis::script_text(Algorithm::kFixedWindow, true));
  auto error_of = [&](std::vector<std::string> args) {
    const Reply r = redis.command(args);
    return r->type == REDIS_REPLY_ERROR ? std::string(r->str) : std::string("no error");
  };
  auto args = eval_command(sha, policy, "fg:fw:{malformed}", "", 1);
  args[5] = "-1";  // cost
  EXPECT_TRUE(error_of(args).starts_with("ERR floodgate: ARGV[2] (cost) must be a decimal integer"))
      << error_of(args);
  args = eval_command(sha, policy, "fg:fw:{malformed}", "", 1);
  args[6] = "0";  // limit
  EXPECT_TRUE(error_of(args).starts_with("ERR floodgate: ARGV[3] (limit) is out of range"))
      << error_of(args);
  args = eval_command(sha, policy, "fg:fw:{malformed}", "1.5", 1);
  EXPECT_TRUE(error_of(args).starts_with("ERR floodgate: ARGV[1] (now) must be a decimal integer"))
      << error_of(args);
}

// MEMORY USAGE of one key per algorithm after one request, with the client's key names. gcra and
// fixed_window are the high-cardinality algorithms. A string value of at most 12 bytes fits Redis
// 7.0's 32-byte allocation with its object header; 13 to 28 bytes take the 48-byte one. A fixed
// window's state (start, count) packs into 11 bytes, a debt meter's (a debt below 2^50 ticks and
// its stamp modulo 2^46 us) into 12: every single-string key stays within 100 bytes.
//
// Redis 7.0 recycles the objects of redis.call() arguments, per position, and SET keeps the object
// it is given as its value: a value may be a recycled object sized for a longer argument that an
// earlier call passed in its place (a score, a time, a key name), 16 bytes more a key. So each key
// is measured right after every path of every script (admitted, peeked, limited, refused, a log
// dropped), as in a Redis serving all six: none may leave such an argument behind (see the end of
// sliding_window_log.lua).
TEST(RedisScripts, MemoryUsagePerKey) {
  RedisClient redis(shared_server().port());
  struct Call {
    Policy policy;
    std::string key;
    std::uint64_t cost;
    Micros sleep_before{0};
  };
  std::vector<Call> before;
  for (const Algorithm b : kAlgorithms) {
    const std::string other = key_of(b, "user:1");
    for (const std::uint64_t cost : {1u, 0u, 10u, 20u}) {  // admitted, peeked, limited, refused
      before.push_back({hour_policy(b), other, cost});
    }
    before.push_back({hour_policy(b), key_of(b, "user:2"), 0});  // nothing there
  }
  const Policy brief = Policy::sliding_window_log(10, 1ms).value();
  before.push_back({brief, "fg:swl:{user:3}", 1});
  before.push_back({brief, "fg:swl:{user:3}", 0, 3ms});  // expired: both keys dropped

  auto call = [&](const Policy& policy, const std::string& key, std::uint64_t cost) {
    const std::string sha = redis.load(redis::script_text(policy.algorithm(), false));
    const Reply r = redis.command(eval_command(sha, policy, key, "", cost));
    EXPECT_EQ(r->type, REDIS_REPLY_ARRAY) << describe_reply(r.get(), policy);
  };
  for (const Algorithm a : kAlgorithms) {
    const std::string key = key_of(a, "user:12345");
    std::int64_t least = std::numeric_limits<std::int64_t>::max(), most = 0;
    std::string detail;
    for (const Call& c : before) {
      std::this_thread::sleep_for(c.sleep_before);
      call(c.policy, c.key, c.cost);
      redis.command({"DEL", key, key + ":m"});
      call(hour_policy(a), key, 3);
      std::int64_t bytes = redis.integer({"MEMORY", "USAGE", key, "SAMPLES", "0"});
      if (a == Algorithm::kSlidingWindowLog) {
        const std::int64_t meta = redis.integer({"MEMORY", "USAGE", key + ":m", "SAMPLES", "0"});
        detail = " (sorted set " + std::to_string(bytes) + " + meta " + std::to_string(meta) + ")";
        bytes += meta;
      }
      least = std::min(least, bytes);
      most = std::max(most, bytes);
      if (a == Algorithm::kFixedWindow || is_debt_meter(a)) {
        EXPECT_LE(bytes, 100) << key << " after " << c.policy << " cost " << c.cost << " on "
                              << c.key;
      }
    }
    redis.command({"DEL", key, key + ":m"});
    std::cout << "[ memory   ] " << key << ": " << most << " bytes" << detail;
    if (least != most) std::cout << " (" << least << " after some scripts)";
    std::cout << "\n";
    RecordProperty("memory_usage_" + std::string(to_string(a)), static_cast<int>(most));
  }

  // Keys written as the 2nd to nth check of one call: after each path of the same script in that
  // call (admitted, peeked, limited, refused, nothing there, a log dropped), the call itself after
  // every path of every script.
  for (const Algorithm a : kAlgorithms) {
    const Policy policy = hour_policy(a);
    const std::string sha = redis.load(redis::script_text(a, false));
    const std::string other = key_of(a, "batch:1"), empty = key_of(a, "batch:2");
    const std::string dropped = key_of(a, "batch:3");
    std::vector<Check> checks;
    std::vector<std::string> measured;
    auto then_measured = [&] {
      measured.push_back(key_of(a, "user:1234" + std::to_string(measured.size())));
      checks.push_back({policy, measured.back(), 3});
    };
    for (const std::uint64_t cost : {1u, 0u, 10u, 20u}) {
      checks.push_back({policy, other, cost});
      then_measured();
    }
    checks.push_back({policy, empty, 0});
    then_measured();
    if (a == Algorithm::kSlidingWindowLog) {
      checks.push_back({brief, dropped, 0});  // written 3 ms before the call: both keys dropped
      then_measured();
    }
    checks.push_back({policy, measured.front(), 0});  // written again, after all of them

    std::int64_t least = std::numeric_limits<std::int64_t>::max(), most = 0;
    for (const Call& c : before) {
      std::this_thread::sleep_for(c.sleep_before);
      call(c.policy, c.key, c.cost);
      for (const std::string& k : measured) redis.command({"DEL", k, k + ":m"});
      redis.command({"DEL", other, other + ":m"});
      if (a == Algorithm::kSlidingWindowLog) {
        call(brief, dropped, 1);
        std::this_thread::sleep_for(3ms);
      }
      const Reply r = redis.command(batch_command(sha, checks, ""));
      ASSERT_EQ(r->type, REDIS_REPLY_ARRAY) << describe_replies(r.get(), checks)[0];
      for (std::size_t i = 0; i < measured.size(); ++i) {
        const std::string& key = measured[i];
        std::int64_t bytes = redis.integer({"MEMORY", "USAGE", key, "SAMPLES", "0"});
        if (a == Algorithm::kSlidingWindowLog) {
          bytes += redis.integer({"MEMORY", "USAGE", key + ":m", "SAMPLES", "0"});
        }
        least = std::min(least, bytes);
        most = std::max(most, bytes);
        if (a == Algorithm::kFixedWindow || is_debt_meter(a)) {
          EXPECT_LE(bytes, 100) << key << " written by check " << 2 * i + 1 << " of "
                                << checks.size() << " after " << c.policy << " cost " << c.cost
                                << " on " << c.key;
        }
      }
    }
    for (const std::string& k : measured) redis.command({"DEL", k, k + ":m"});
    for (const std::string& k : {other, empty, dropped}) redis.command({"DEL", k, k + ":m"});
    std::cout << "[ memory   ] " << to_string(a) << ", keys written by checks 2 to "
              << checks.size() << " of one call: " << most << " bytes";
    if (least != most) std::cout << " (" << least << " after some)";
    std::cout << "\n";
    RecordProperty("memory_usage_in_a_call_" + std::string(to_string(a)), static_cast<int>(most));
  }
  for (const Call& c : before) redis.command({"DEL", c.key, c.key + ":m"});
}

// A debt meter keeps its stamp modulo 2^46 us and reads it back nearest to now: exact over a key's
// whole life (up to 365 days and a minute after its stamp), across a multiple of 2^46, and for a
// clock stepped back by 400 days; the debt's 50 bits hold the largest tolerance. Decisions and
// stored states against core::decide(), step by step, on the test-time variant.
TEST(RedisScripts, DebtStatesStayExactAtTheEdgesOfTheirFields) {
  RedisClient redis(shared_server().port());
  constexpr std::int64_t kDay = 86'400'000'000;
  constexpr std::int64_t kWrap = 25 * kStampModulus;  // 2025-09-30: stamps wrap to 0 here
  const std::int64_t year = kMaxWindow.count();

  // run(): the steps on a fresh key; returns the largest debt the C++ state held.
  auto run = [&](const Policy& policy,
                 const std::vector<std::pair<std::int64_t, std::uint64_t>>& steps) {
    const Algorithm a = policy.algorithm();
    const std::string sha = redis.load(redis::script_text(a, /*test_time=*/true));
    const std::string key = key_of(a, "edges");
    redis.command({"DEL", key});
    core::CompactState state;
    std::int64_t largest_debt = 0;
    for (const auto& [now, cost] : steps) {
      SCOPED_TRACE(::testing::Message() << policy << " now " << now << " cost " << cost);
      const Decision expected = core::decide(policy, state, Micros{now}, cost);
      const Reply r = redis.command(eval_command(sha, policy, key, std::to_string(now), cost));
      EXPECT_EQ(describe_reply(r.get(), policy), describe(expected));
      std::string want = describe_state(a, state);
      if (!state.is_fresh()) {
        want += " expires_ms=" + std::to_string(production_expiry_ms(now, expected.reset_after));
      }
      EXPECT_EQ(describe_stored(a, redis.command({"GET", key}).get(), now), want);
      largest_debt = std::max(largest_debt, std::bit_cast<core::DebtState>(state).debt);
    }
    redis.command({"DEL", key});
    return largest_debt;
  };
  auto drain_us = [](const Policy& p) {
    return ceil_div(static_cast<std::int64_t>(p.limit()) * p.interval(), p.ticks_per_us());
  };

  // One request worth a year, admitted a microsecond before a wrap (its residue all ones): read
  // across the wrap, a microsecond before it drains, from 400 days back, and once drained.
  const Policy gcra = Policy::gcra(1, kMaxWindow).value();
  const std::int64_t t0 = kWrap - 1;
  const std::int64_t gcra_drain = drain_us(gcra);
  EXPECT_GE(gcra_drain, year);
  run(gcra, {{t0, 1},
             {t0 + 1, 0},
             {t0 + 2, 1},
             {t0 + gcra_drain - 1, 0},
             {t0 + gcra_drain - 1 - 400 * kDay, 1},
             {t0 + gcra_drain, 0}});

  // The largest tolerance (just below 2^50) at nearly the slowest rate: the longest drain, read
  // from 400 and 407 days back.
  const Policy largest = Policy::token_bucket(static_cast<std::int64_t>(kMaxLimit),
                                              static_cast<double>(kMaxLimit) /
                                                  (static_cast<double>(year) / 1e6) * 1.0001)
                             .value();
  const std::int64_t tolerance = static_cast<std::int64_t>(largest.limit()) * largest.interval();
  const std::int64_t drain = drain_us(largest);
  EXPECT_GT(drain, year - kDay);
  const std::int64_t debt = run(largest, {{t0, largest.limit()},
                                          {t0 + 300 * kDay, 0},
                                          {t0 + 300 * kDay - 400 * kDay, 1},
                                          {t0 + drain - 1, 0},
                                          {t0 + drain - 1 - 407 * kDay, 0},
                                          {t0 + drain, 0}});
  EXPECT_EQ(debt, tolerance);
  EXPECT_GT(debt, std::int64_t{1} << 49) << "the debt's top bits are used";

  // A bucket that never refills: its key is kept a year after its last use, its stamp follows the
  // latest time; a clock stepped back 400 days is still behind it.
  const Policy quota = Policy::token_bucket(1000, 0).value();
  const std::int64_t t1 = kWrap + 17;
  EXPECT_EQ(
      run(quota, {{t1, 999}, {t1 + 364 * kDay, 1}, {t1 - 36 * kDay, 0}, {t1 + 300 * kDay, 1}}),
      1000);
}

// A sliding log at the largest limit: 100,000 entries in a sorted set, decided as the core decides
// while entries expire one by one under it. What such a call costs in Redis is measured by
// bench/redis_scripts_bench (a denial walks only the oldest entries it needs).
TEST(RedisScripts, AFullSlidingLogOfTheLargestLimitDecidesAsTheCore) {
  RedisClient redis(shared_server().port());
  const Policy policy =
      Policy::sliding_window_log(static_cast<std::int64_t>(kMaxLogLimit), 1h).value();
  const std::string sha = redis.load(redis::script_text(Algorithm::kSlidingWindowLog, true));
  const std::string key = "fg:swl:{full-log}";
  core::SlidingLog log;
  std::int64_t now = kEpoch2026;
  for (std::uint64_t i = 0; i < kMaxLogLimit; ++i) {
    redis.append(eval_command(sha, policy, key, std::to_string(now), 1));
    core::decide(policy, log, Micros{now}, 1);
    now += 10;
  }
  for (std::uint64_t i = 0; i < kMaxLogLimit; ++i) ASSERT_EQ(redis.read()->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(redis.integer({"ZCARD", key}), static_cast<std::int64_t>(kMaxLogLimit));

  for (int i = 0; i < 200; ++i) {
    now += 1'000;  // entries expire one by one once the window has passed
    const std::uint64_t cost = i % 2 == 0 ? 1 : 3;
    const Decision expected = core::decide(policy, log, Micros{now}, cost);
    const Reply r = redis.command(eval_command(sha, policy, key, std::to_string(now), cost));
    ASSERT_EQ(describe_reply(r.get(), policy), describe(expected)) << "call " << i;
  }
  redis.command({"DEL", key, key + ":m"});
}

// ---------------------------------------------------------------------------------------------
// The fixture itself: by PID, bounded, same port on restart.

TEST(RedisServerFixture, PausesResumesRestartsAndKillsByPid) {
  testing::RedisServer server({"--requirepass", "secret"});
  const int port = server.port();
  ASSERT_GT(server.pid(), 0);
  {
    RedisClient redis(port);
    EXPECT_EQ(redis.command({"PING"})->type, REDIS_REPLY_ERROR);  // NOAUTH
    ASSERT_EQ(redis.command({"AUTH", "secret"})->type, REDIS_REPLY_STATUS);
    redis.command({"SET", "k", "v"});
  }

  server.pause();
  {
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port, timeval{1, 0});
    ASSERT_TRUE(c != nullptr && c->err == 0);  // the kernel still accepts
    redisSetTimeout(c, timeval{0, 200'000});
    void* reply = redisCommand(c, "PING");
    EXPECT_EQ(reply, nullptr) << "a paused server does not answer";
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(c);
  }
  server.resume();

  server.restart();
  EXPECT_EQ(server.port(), port);
  {
    RedisClient redis(port);
    ASSERT_EQ(redis.command({"AUTH", "secret"})->type, REDIS_REPLY_STATUS);
    EXPECT_EQ(redis.command({"GET", "k"})->type, REDIS_REPLY_NIL) << "no persistence";
  }

  const pid_t pid = server.pid();
  server.kill9();
  EXPECT_FALSE(server.running());
  EXPECT_NE(kill(pid, 0), 0) << "the process is gone (and reaped)";
  redisContext* c = redisConnect("127.0.0.1", port);
  EXPECT_TRUE(c == nullptr || c->err != 0);
  if (c != nullptr) redisFree(c);
}

}  // namespace
}  // namespace floodgate
