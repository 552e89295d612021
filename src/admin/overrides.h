// File: admin/overrides.h
//
// Overrides: runtime limits an operator sets for one key, or for every key that starts with a
// prefix (POST /admin/limits): the seeds' "dynamic rate limit adjustment". An override replaces
// the policy of the next check of a matching key (all checks of it, or only those that name
// `rule`), until it is removed or expires.
//
// Which override applies to a check of key K under rule R (R empty: an inline policy):
//   1. an override of exactly K for R, then one of exactly K for any rule;
//   2. else the longest prefix of K with an override, one for R before one for any rule.
//
// The hot path asks find() on every check: the overrides are read from an immutable snapshot
// (a hash map of keys and one of prefixes, with the distinct prefix lengths) that each thread
// caches (admin/published.h), so with no override a check costs one atomic load and a branch.
// Expiry is checked on read, as the lists do.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "admin/published.h"
#include "floodgate/clock.h"
#include "floodgate/policy.h"
#include "floodgate/policy_spec.h"

namespace floodgate::admin {

struct Override {
  std::string id;   // "ov_…", random
  std::string key;  // the key, or the prefix when `prefix`
  bool prefix = false;
  std::string rule;                                    // empty: every check of the key
  PolicySpec spec;                                     // the algorithm and parameters as given
  Policy policy = Policy::token_bucket(1, 1).value();  // built from `spec`
  std::string added_by;                                // the address the admin request came from
  Micros created{0};                                   // wall time
  Micros expires{0};                                   // wall time; 0: never
};

// NewOverride: what an admin request asks for (validated by add()).
struct NewOverride {
  std::optional<std::string> key;
  std::optional<std::string> key_prefix;
  std::optional<std::string> rule;
  PolicySpec spec;
  std::optional<double> expires_in_s;
  std::string added_by;
};

class Overrides {
 public:
  // `max_entries` bounds the overrides (ADMIN_MAX_ENTRIES); `defaults` fill what a spec leaves out.
  Overrides(const Clock& clock, std::size_t max_entries, PolicyDefaults defaults);
  ~Overrides();
  Overrides(const Overrides&) = delete;
  Overrides& operator=(const Overrides&) = delete;

  struct AddError {
    int status = 400;
    std::string code;
    std::string field;
    std::string message;
  };
  // add(): validates and stores the override, in force for the next check. The same key (or
  // prefix) and rule again replaces the older override (its id changes). `known_rule` says
  // whether a rule name exists (null: any name is accepted).
  // `replaced`, when given, learns the overrides the new one replaced.
  std::variant<Override, AddError> add(const NewOverride& request,
                                       const std::function<bool(std::string_view)>& known_rule,
                                       std::vector<Override>* replaced = nullptr);
  std::optional<Override> remove(std::string_view id);
  // entries(): the live overrides, oldest first.
  std::vector<Override> entries() const;
  // put(): `o` (built, as a shared store holds it) is in force, replacing any override with its id
  // or with its key (or prefix) and rule.
  void put(Override o);
  // replace_all(): the overrides become `entries` (expired ones dropped).
  void replace_all(std::vector<Override> entries);

  // find(): the policy the override for a check of `key` under `rule` sets, or nullopt. The hot
  // path: one atomic load when there is none.
  std::optional<Policy> find(std::string_view key, std::string_view rule) const;

  // build(): an Override from stored parts (the shared store's copy): the policy is built from
  // `o.spec`. nullopt when the spec no longer builds.
  std::optional<Override> build(Override o) const;

 private:
  struct Snapshot;
  const Snapshot& snapshot() const;
  void publish_locked();
  void drop_expired_locked(Micros now);

  const Clock& clock_;
  const std::size_t max_entries_;
  const PolicyDefaults defaults_;
  mutable std::mutex mu_;
  std::vector<Override> entries_;       // guarded by mu_
  Micros next_expiry_ = Micros::max();  // guarded by mu_
  Published<Snapshot> published_;
};

}  // namespace floodgate::admin
