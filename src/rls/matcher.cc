// The lookup and the key building follow envoyproxy/ratelimit's GetLimit (src/config/
// config_impl.go) and its cache key (src/limiter/cache_key.go) step by step, so a counter and a
// statistic get the same name in both services.
#include "rls/matcher.h"

#include <set>

namespace floodgate::rls {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string_view trim_prefix(std::string_view s, std::string_view prefix) {
  return starts_with(s, prefix) ? s.substr(prefix.size()) : s;
}

void append_storage_key(std::string& out, std::string_view domain, std::span<const Entry> entries,
                        const std::vector<std::string_view>& share_patterns) {
  out.append(domain);
  out += '_';
  for (std::size_t i = 0; i < entries.size(); ++i) {
    out.append(entries[i].key);
    out += '_';
    const bool shared = i < share_patterns.size() && !share_patterns[i].empty();
    out.append(shared ? share_patterns[i] : entries[i].value);
    out += '_';
  }
}

Match match_override(std::string_view domain, const Descriptor& descriptor) {
  Match m;
  RateLimit& rl = m.override_limit.emplace();
  rl.requests_per_unit = descriptor.limit->requests_per_unit;
  rl.unit = descriptor.limit->unit;
  const auto window = std::chrono::duration_cast<Micros>(unit_duration(rl.unit));
  if (rl.requests_per_unit > 0 && window.count() > 0) {
    if (auto policy = Policy::fixed_window(rl.requests_per_unit, window)) rl.policy = *policy;
  }
  append_storage_key(m.storage_key, domain, descriptor.entries, {});
  // envoyproxy/ratelimit's descriptorKey(): "domain.key1_value1.key2", the value only when given.
  m.stats_key.append(domain);
  m.stats_key += '.';
  for (std::size_t i = 0; i < descriptor.entries.size(); ++i) {
    if (i > 0) m.stats_key += '.';
    m.stats_key.append(descriptor.entries[i].key);
    if (!descriptor.entries[i].value.empty()) {
      m.stats_key += '_';
      m.stats_key.append(descriptor.entries[i].value);
    }
  }
  return m;
}

}  // namespace

bool wildcard_match(std::span<const std::string> parts, std::string_view text) {
  if (parts.size() == 1) return parts[0] == text;
  const std::string& first = parts.front();
  const std::string& last = parts.back();
  if (!starts_with(text, first)) return false;
  if (text.size() < last.size() || text.substr(text.size() - last.size()) != last) return false;
  std::size_t fixed = 0;
  for (const auto& p : parts) fixed += p.size();
  if (text.size() < fixed) return false;
  // The middle parts, in order, between the prefix and the suffix.
  std::string_view remaining = text.substr(first.size(), text.size() - first.size() - last.size());
  for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
    const std::size_t at = remaining.find(parts[i]);
    if (at == std::string_view::npos) return false;
    remaining.remove_prefix(at + parts[i].size());
  }
  return true;
}

Match match(const Config& config, std::string_view domain, const Descriptor& descriptor) {
  const Domain* d = config.find(domain);
  if (!d) return {};
  if (descriptor.limit) return match_override(domain, descriptor);

  const std::span<const Entry> entries = descriptor.entries;
  const DescriptorNode* level = &d->root;
  const DescriptorNode* found = nullptr;
  std::string lookup;
  // The stats key as the walk builds it: each level's lookup key, unless value_to_metric or
  // share_threshold put the request's value or the shared pattern there.
  std::string value_to_metric_key(domain);
  std::vector<std::string_view> share_patterns;  // per entry; empty unless share_threshold

  for (std::size_t i = 0; i < entries.size(); ++i) {
    const Entry& entry = entries[i];
    lookup.assign(entry.key);
    lookup += '_';
    lookup.append(entry.value);

    const DescriptorNode* next = level->find(lookup);
    const DescriptorNode* wildcard = nullptr;
    if (!next) {
      for (const auto& w : level->wildcards) {
        if (wildcard_match(w.parts, lookup)) {
          next = wildcard = &level->children[w.child];
          break;
        }
      }
    }
    const bool matched_using_value = next != nullptr;
    if (!next) next = level->find(entry.key);

    std::string_view share_pattern;
    if (wildcard && wildcard->share_threshold) {
      share_pattern = trim_prefix(wildcard->lookup_key, std::string(entry.key) + "_");
      share_patterns.resize(entries.size());
      share_patterns[i] = share_pattern;
    }

    value_to_metric_key += '.';
    value_to_metric_key.append(entry.key);
    if (next) {
      std::string_view shown;
      if (wildcard) {
        shown = !share_pattern.empty() ? share_pattern
                : next->value_to_metric
                    ? entry.value
                    : trim_prefix(wildcard->lookup_key, std::string(entry.key) + "_");
      } else if (matched_using_value || next->value_to_metric) {
        shown = entry.value;
      }
      if (!shown.empty()) {
        value_to_metric_key += '_';
        value_to_metric_key.append(shown);
      }
    }

    if (next && next->rate_limit && i + 1 == entries.size()) found = next;
    if (!next || next->children.empty()) break;
    level = next;
  }
  if (!found) return {};

  Match m;
  m.node = found;
  m.config_limit = &*found->rate_limit;
  append_storage_key(m.storage_key, domain, entries, share_patterns);
  if (m.config_limit->detailed_metric) {
    // Every entry's own value ("key_" when empty), or the shared pattern for share_threshold.
    m.stats_key.append(domain);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      m.stats_key += '.';
      m.stats_key.append(entries[i].key);
      const bool shared = i < share_patterns.size() && !share_patterns[i].empty();
      if (shared) {
        m.stats_key += '_';
        m.stats_key.append(share_patterns[i]);
      } else if (share_patterns.empty() || !entries[i].value.empty()) {
        m.stats_key += '_';
        m.stats_key.append(entries[i].value);
      }
    }
  } else {
    m.stats_key = std::move(value_to_metric_key);
  }
  return m;
}

std::vector<Match> match_all(const Config& config, std::string_view domain,
                             std::span<const Descriptor> descriptors) {
  std::vector<Match> out;
  out.reserve(descriptors.size());
  std::set<std::string_view> replacing;
  for (const Descriptor& descriptor : descriptors) {
    out.push_back(match(config, domain, descriptor));
    if (const RateLimit* limit = out.back().limit()) {
      for (const std::string& name : limit->replaces) replacing.insert(name);
    }
  }
  if (replacing.empty()) return out;
  for (Match& m : out) {
    const RateLimit* limit = m.limit();
    if (limit && !limit->unlimited && !limit->name.empty() && replacing.contains(limit->name)) {
      m.replaced = true;
    }
  }
  return out;
}

}  // namespace floodgate::rls
