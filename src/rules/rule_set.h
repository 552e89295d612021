// File: rules/rule_set.h
//
// RuleSet: the named rules of a floodgate rules file (docs/CONFIG.md), immutable once loaded.
// A check names a rule instead of giving a policy; a rule may pick its policy by tier (free, pro,
// enterprise, ...) from a request header or from the key's prefix, and says how GET /v1/auth builds
// a key from the request.
//
// RuleStore: the RuleSet in force, swapped whole on reload. Readers take a snapshot per request
// without touching a shared cache line unless a reload happened (a per-thread cached copy).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "floodgate/policy.h"
#include "floodgate/store.h"

namespace floodgate::rules {

using floodgate::FailureMode;

// KeyPart: one piece of the key /v1/auth builds for a rule.
struct KeyPart {
  enum class Kind : std::uint8_t { kIp, kApiKey, kUri, kHeader } kind = Kind::kIp;
  std::string header;  // kHeader: the header's name
};

struct Tiers {
  std::string header;  // pick the tier from this request header; empty: from the key's prefix
  std::map<std::string, Policy, std::less<>> policies;
  std::optional<std::string> fallback;  // tier when none matches; absent: the rule's own policy
};

struct Rule {
  std::string name;
  Policy policy;
  std::optional<FailureMode> failure_mode;
  std::vector<KeyPart> key;  // for /v1/auth; empty: [ip]
  std::optional<Tiers> tiers;
  int metrics_slot = -1;  // set by whoever publishes the rules (see observe::Metrics::rule_slot)

  // Resolved: the policy and the tier name ("" for none) a request gets under this rule.
  struct Resolved {
    const Policy* policy;
    std::string_view tier;
  };
  // resolve(): `header` reads a request header by name ("" if absent).
  Resolved resolve(std::string_view request_key,
                   const std::function<std::string_view(std::string_view)>& header) const;
};

// AuthRoute: which rule GET /v1/auth applies to a request of the proxy, by the original request's
// path (X-Original-URI) and method (X-Original-Method).
struct AuthRoute {
  std::string path;    // "/api" matches /api and everything under /api/; "/" matches every path
  std::string method;  // upper case; empty: any method
  std::string rule;
};

struct RuleSet {
  std::map<std::string, Rule, std::less<>> rules;
  std::optional<std::string> auth_rule;  // the rule GET /v1/auth applies when no route matches
  std::vector<AuthRoute> auth_routes;    // longest path first; of one path, a method's first
  std::string source;                    // the file it came from

  const Rule* find(std::string_view name) const {
    auto it = rules.find(name);
    return it == rules.end() ? nullptr : &it->second;
  }
  // auth_rule_for(): the rule of the first route matching `path` and `method`, else auth_rule's;
  // null when neither names one (GET /v1/auth then applies the defaults).
  const Rule* auth_rule_for(std::string_view path, std::string_view method) const;
};

class RuleStore {
 public:
  explicit RuleStore(std::shared_ptr<const RuleSet> initial = std::make_shared<RuleSet>());

  // current(): the rule set in force. Cheap: the calling thread keeps its own reference, refreshed
  // after a replace(), so no reference count is touched per call. The result stays valid until
  // this thread calls current() again.
  const RuleSet& current() const;
  void replace(std::shared_ptr<const RuleSet> next);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RuleSet> rules_;  // guarded by mu_
  std::atomic<std::uint64_t> version_{1};
  std::uint64_t id_;  // tells RuleStores apart in the per-thread cache
};

}  // namespace floodgate::rules
