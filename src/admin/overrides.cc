#include "admin/overrides.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>
#include <boost/unordered/unordered_flat_map.hpp>

#include "core/key_hash.h"

namespace floodgate::admin {
namespace {

constexpr std::size_t kMaxKeyBytes = 512;  // as a check's key
constexpr std::size_t kMaxRuleBytes = 128;
constexpr double kMaxExpiresInS = 10.0 * 365 * 24 * 3600;

using PolicyMap = boost::unordered_flat_map<std::string, Policy, core::StringHash, std::equal_to<>>;

// Map keys: the rule, a unit separator, then the key (or prefix). No key or rule name the API
// accepts holds the separator... and if one did, it would only match itself.
constexpr char kSeparator = '\x1f';

void compose(std::string& out, std::string_view rule, std::string_view key) {
  out.assign(rule);
  out += kSeparator;
  out += key;
}

// same_target(): the two overrides are for the same key (or prefix) and rule, so the newer
// replaces the older.
bool same_target(const Override& a, const Override& b) {
  return a.prefix == b.prefix && a.key == b.key && a.rule == b.rule;
}

std::string new_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("ov_{:016x}", rng());
}

}  // namespace

struct Overrides::Snapshot {
  PolicyMap exact;
  PolicyMap prefixes;
  std::vector<std::size_t> prefix_lengths;  // distinct, longest first
  Micros next_expiry = Micros::max();
  bool empty = true;
};

Overrides::Overrides(const Clock& clock, std::size_t max_entries, PolicyDefaults defaults)
    : clock_(clock),
      max_entries_(max_entries),
      defaults_(defaults),
      published_(std::make_shared<const Snapshot>()) {}

Overrides::~Overrides() = default;

const Overrides::Snapshot& Overrides::snapshot() const { return published_.get(); }

std::optional<Policy> Overrides::find(std::string_view key, std::string_view rule) const {
  const Snapshot* s = &snapshot();
  if (s->empty) return std::nullopt;
  if (s->next_expiry != Micros::max() && clock_.now() >= s->next_expiry) {
    {
      std::lock_guard lock(mu_);
      const_cast<Overrides&>(*this).drop_expired_locked(clock_.now());  // a change made on read
    }
    s = &snapshot();
    if (s->empty) return std::nullopt;
  }
  thread_local std::string probe;
  auto lookup = [&](const PolicyMap& map, std::string_view k) -> const Policy* {
    if (map.empty()) return nullptr;
    if (!rule.empty()) {
      compose(probe, rule, k);
      if (auto it = map.find(probe); it != map.end()) return &it->second;
    }
    compose(probe, "", k);
    if (auto it = map.find(probe); it != map.end()) return &it->second;
    return nullptr;
  };
  if (const Policy* p = lookup(s->exact, key)) return *p;
  for (const std::size_t length : s->prefix_lengths) {
    if (length > key.size()) continue;
    if (const Policy* p = lookup(s->prefixes, key.substr(0, length))) return *p;
  }
  return std::nullopt;
}

std::optional<Override> Overrides::build(Override o) const {
  auto policy = build_policy(o.spec, defaults_);
  if (!policy) return std::nullopt;
  o.policy = *policy;
  return o;
}

std::variant<Override, Overrides::AddError> Overrides::add(
    const NewOverride& request, const std::function<bool(std::string_view)>& known_rule,
    std::vector<Override>* replaced) {
  auto invalid = [](std::string field, std::string message) {
    return AddError{400, "invalid_parameter", std::move(field), std::move(message)};
  };
  if (request.key.has_value() == request.key_prefix.has_value()) {
    return AddError{400, request.key ? "invalid_parameter" : "missing_field", "key",
                    request.key ? "and key_prefix cannot both be given: one override is for a key "
                                  "or for a prefix"
                                : "is required (or key_prefix, for every key that starts with it)"};
  }
  Override o;
  o.prefix = request.key_prefix.has_value();
  o.key = o.prefix ? *request.key_prefix : *request.key;
  const char* field = o.prefix ? "key_prefix" : "key";
  if (o.key.empty()) return invalid(field, "must not be empty");
  if (o.key.size() > kMaxKeyBytes) {
    return invalid(field, fmt::format("must be at most {} bytes", kMaxKeyBytes));
  }
  if (request.rule) {
    if (request.rule->empty() || request.rule->size() > kMaxRuleBytes) {
      return invalid("rule", fmt::format("must be 1 to {} bytes", kMaxRuleBytes));
    }
    if (known_rule && !known_rule(*request.rule)) {
      return AddError{400, "unknown_rule", "rule", "names no configured rule"};
    }
    o.rule = *request.rule;
  }
  if (!request.spec.algorithm) {
    return AddError{400, "missing_field", "algorithm",
                    "is required (token_bucket, gcra, leaky_bucket, fixed_window, "
                    "sliding_window_log or sliding_window_counter)"};
  }
  o.spec = request.spec;
  auto policy = build_policy(o.spec, defaults_);
  if (!policy) return invalid(policy.error().field, policy.error().message);
  o.policy = *policy;
  const Micros now = clock_.now();
  if (request.expires_in_s) {
    const double s = *request.expires_in_s;
    if (!std::isfinite(s) || s <= 0 || s > kMaxExpiresInS) {
      return invalid("expires_in_s", "must be a number of seconds above 0 and at most 10 years");
    }
    o.expires = now + Micros(std::max<std::int64_t>(1, std::llround(s * 1e6)));
  }
  o.added_by = request.added_by;
  o.created = now;
  o.id = new_id();

  std::lock_guard lock(mu_);
  drop_expired_locked(now);
  auto same = [&](const Override& e) { return same_target(e, o); };
  std::vector<Override> same_ones;
  for (const Override& e : entries_) {
    if (same(e)) same_ones.push_back(e);
  }
  if (entries_.size() - same_ones.size() >= max_entries_) {
    return AddError{
        409, "list_full", field,
        fmt::format("{} overrides are set, the limit (ADMIN_MAX_ENTRIES)", entries_.size())};
  }
  std::erase_if(entries_, same);
  if (replaced != nullptr) *replaced = std::move(same_ones);
  entries_.push_back(o);
  publish_locked();
  return o;
}

std::optional<Override> Overrides::remove(std::string_view id) {
  std::lock_guard lock(mu_);
  drop_expired_locked(clock_.now());
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const Override& e) { return e.id == id; });
  if (it == entries_.end()) return std::nullopt;
  Override removed = std::move(*it);
  entries_.erase(it);
  publish_locked();
  return removed;
}

std::vector<Override> Overrides::entries() const {
  const Micros now = clock_.now();
  std::lock_guard lock(mu_);
  std::vector<Override> out;
  for (const Override& e : entries_) {
    if (e.expires.count() == 0 || e.expires > now) out.push_back(e);
  }
  return out;
}

void Overrides::put(Override o) {
  std::lock_guard lock(mu_);
  std::erase_if(entries_, [&](const Override& e) { return e.id == o.id || same_target(e, o); });
  entries_.push_back(std::move(o));
  drop_expired_locked(clock_.now());
  publish_locked();
}

void Overrides::replace_all(std::vector<Override> entries) {
  std::lock_guard lock(mu_);
  entries_ = std::move(entries);
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Override& a, const Override& b) { return a.created < b.created; });
  drop_expired_locked(clock_.now());
  publish_locked();
}

void Overrides::drop_expired_locked(Micros now) {
  const auto before = entries_.size();
  std::erase_if(entries_,
                [&](const Override& e) { return e.expires.count() != 0 && e.expires <= now; });
  if (entries_.size() != before || next_expiry_ <= now) publish_locked();
}

void Overrides::publish_locked() {
  auto s = std::make_shared<Snapshot>();
  std::string composed;
  for (const Override& e : entries_) {
    compose(composed, e.rule, e.key);
    (e.prefix ? s->prefixes : s->exact).insert_or_assign(composed, e.policy);
    if (e.prefix) s->prefix_lengths.push_back(e.key.size());
    if (e.expires.count() != 0) s->next_expiry = std::min(s->next_expiry, e.expires);
  }
  std::sort(s->prefix_lengths.begin(), s->prefix_lengths.end(), std::greater<>());
  s->prefix_lengths.erase(std::unique(s->prefix_lengths.begin(), s->prefix_lengths.end()),
                          s->prefix_lengths.end());
  s->empty = entries_.empty();
  next_expiry_ = s->next_expiry;
  published_.publish(std::move(s));
}

}  // namespace floodgate::admin
