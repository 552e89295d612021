#include "rules/rule_set.h"

namespace floodgate::rules {

Rule::Resolved Rule::resolve(
    std::string_view request_key,
    const std::function<std::string_view(std::string_view)>& header) const {
  if (!tiers) return {&policy, {}};
  const std::string_view wanted =
      tiers->header.empty() ? request_key.substr(0, request_key.find(':')) : header(tiers->header);
  if (auto it = tiers->policies.find(wanted); it != tiers->policies.end()) {
    return {&it->second, it->first};
  }
  if (tiers->fallback) {
    auto it = tiers->policies.find(*tiers->fallback);
    return {&it->second, it->first};
  }
  return {&policy, {}};
}

const Rule* RuleSet::auth_rule_for(std::string_view path, std::string_view method) const {
  for (const AuthRoute& route : auth_routes) {
    if (!route.method.empty() && route.method != method) continue;
    if (!path.starts_with(route.path)) continue;
    // On a segment boundary: "/api" is not a prefix of "/apix".
    if (path.size() == route.path.size() || route.path.back() == '/' ||
        path[route.path.size()] == '/') {
      return find(route.rule);
    }
  }
  return auth_rule ? find(*auth_rule) : nullptr;
}

namespace {
std::atomic<std::uint64_t> next_store_id{1};
}  // namespace

RuleStore::RuleStore(std::shared_ptr<const RuleSet> initial)
    : rules_(std::move(initial)), id_(next_store_id.fetch_add(1)) {}

const RuleSet& RuleStore::current() const {
  struct Cached {
    std::uint64_t store = 0;
    std::uint64_t version = 0;
    std::shared_ptr<const RuleSet> rules;
  };
  thread_local Cached cached;
  const std::uint64_t version = version_.load(std::memory_order_acquire);
  if (cached.store != id_ || cached.version != version) {
    std::lock_guard lock(mu_);
    cached = {id_, version_.load(std::memory_order_acquire), rules_};
  }
  return *cached.rules;
}

void RuleStore::replace(std::shared_ptr<const RuleSet> next) {
  std::lock_guard lock(mu_);
  rules_ = std::move(next);
  version_.fetch_add(1, std::memory_order_acq_rel);
}

}  // namespace floodgate::rules
