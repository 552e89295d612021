// File: store/redis/scripts.h
//
// The Redis Lua scripts, one per algorithm, that reproduce core::decide() exactly on a key held in
// Redis. Their text is src/store/redis/scripts/*.lua, embedded at build time (embed.cmake), so the
// binary carries the scripts it was tested with.
//
// Calling convention: one call decides n >= 1 checks of one algorithm, in order, at one time
// (EVALSHA sha n*k KEYS... ARGV...), k = key_count(algorithm):
//   KEYS[i*k+1]  check i's (0-based) state key, namespaced and hash-tagged by the client
//                ("fg:fw:{user:42}"); sliding_window_log also takes KEYS[i*k+2] = that key + ":m"
//                (same hash tag, same slot). In Redis Cluster all the declared keys of one call
//                must be in one slot (CROSSSLOT otherwise): see the node-wide form below.
//   ARGV[1]      now in microseconds since the epoch, or "": honoured only by the test-time
//                variant; otherwise the script reads Redis TIME, once for the whole call
//   ARGV[2+4i]   check i's cost (decimal integer >= 0)
//   ARGV[3+4i]   its Policy::limit()
//   ARGV[4+4i]   debt algorithms: Policy::interval();  window algorithms: window in microseconds
//   ARGV[5+4i]   debt algorithms: Policy::ticks_per_us();  sliding_window_counter:
//                Policy::weight_shift();  fixed_window, sliding_window_log: "0" (unused)
// Checks of one call may have different policies (limits, windows, rates), not different
// algorithms. #KEYS must be a positive multiple of k and #ARGV == 1 + 4n.
// Reply: an array of 6n integers, check i's at 6i..6i+5 (0-based): {allowed 1|0, reason 0 none|1
// limited|2 cost_exceeds_capacity, remaining, reset_after_us, retry_after_us, delay_us}, -1
// standing for kNever. Decision::limit is the policy's. For n = 1 this is the single-check call.
// Checks are applied in order: a check sees the writes of the checks before it in the call (the
// same key may appear several times), so a call decides exactly what its checks sent one by one
// at the same time would. Every argument is validated before anything is read or written: a
// malformed call (a wrong count, a malformed argument in any check) gets an error reply starting
// "ERR floodgate: " and changes nothing.
//
// Node-wide form (Redis Cluster): numkeys 0 and the keys after the arguments, check i's at
// ARGV[2+4n+k*i] (and +1), #ARGV == 1 + (4+k)n. A script without flags may touch undeclared keys
// of every slot its node serves, so one call carries a master's checks of many slots. Each check
// is decided under pcall: one whose key the node does not serve (the slot moved or is half
// migrated) fails on its first access, before writing, and answers {-1, 0, 0, 0, 0, 0} ({-2, ...}
// when the node found the cluster down); the client sends it again alone with its keys declared,
// for MOVED or ASK to lead it on. The other checks of the call are decided as usual.
//
// Keys: a fresh state is no key at all (the script deletes a key whose state became fresh). Every
// key written expires at the millisecond its state becomes equivalent to a fresh one: SET ... PXAT
// ceil((now + reset_after) / 1 ms), or PX 365 days (renewed on each use) for a bucket that never
// refills. The test-time variant sets PX max(ceil(reset_after / 1 ms), 60 s) instead, so keys on
// simulated time never expire on Redis' real clock in the middle of a test; the debt meters'
// test-time state also carries (after the 12 production bytes) the simulated millisecond at which
// the production key would have expired, and reads the key as absent from then on — what Redis
// does to the production key.
// Values are little-endian binary (Lua struct.pack), the smallest exact form: see the .lua files.
#pragma once

#include <string_view>

#include "floodgate/policy.h"

namespace floodgate::redis {

// script_text(): the whole Lua text for `algorithm`. With test_time = true the script honours the
// explicit time in ARGV[1] (tests only); otherwise it always reads Redis TIME and ignores ARGV[1].
// The two variants differ in their first line, so they have different SHA1s. Static storage.
std::string_view script_text(Algorithm algorithm, bool test_time);

// key_count(): how many KEYS the script takes: 2 for sliding_window_log, 1 for the others.
int key_count(Algorithm algorithm);

}  // namespace floodgate::redis
