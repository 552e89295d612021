// File: rls/matcher.h
//
// match(): the limit envoyproxy/ratelimit applies to one request descriptor (its GetLimit), and
// the names to count it under. match_all(): every descriptor of one request, with the limits that
// another matched limit `replaces` marked.
//
// The lookup walks the config one level per entry. At each level it tries, in order: the node
// whose lookup key is `key_value` exactly, then the wildcard nodes in config order (each '*'
// matches any run of characters, including none), then the value-less node `key`. The limit comes
// only from the node the LAST entry matched; an entry that matches nothing, or a node without
// children before the last entry, ends the walk with no limit. A value-less node counts each
// distinct value apart: the storage key holds the request's values, not the config's.
//
// Example:
//   const Descriptor d{{{"remote_address", "10.0.0.1"}}, std::nullopt};
//   Match m = match(config, "edge_proxy_per_ip", d);
//   if (const RateLimit* limit = m.limit()) { /* count m.storage_key under *limit->policy */ }
//
// Complexity: one hash lookup per entry and level, plus a scan of that level's wildcards when
// the exact lookup misses. Thread safety: pure; `config` is only read. The Match points into
// `config`, which must outlive it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rls/config.h"

namespace floodgate::rls {

struct Entry {
  std::string_view key;
  std::string_view value;
};

// A request's own limit for one descriptor (RateLimitDescriptor.limit). It replaces whatever the
// config says, for any descriptor of a known domain, and is never in shadow mode.
struct LimitOverride {
  std::uint32_t requests_per_unit = 0;
  Unit unit = Unit::kUnknown;
};

struct Descriptor {
  std::vector<Entry> entries;
  std::optional<LimitOverride> limit = std::nullopt;
  // RateLimitDescriptor.hits_addend: when set (0 included) it wins over the request's. The
  // matcher does not read it.
  std::optional<std::uint64_t> hits_addend = std::nullopt;
};

struct Match {
  const RateLimit* config_limit = nullptr;  // points into the Config
  std::optional<RateLimit> override_limit;  // built from the request's LimitOverride
  const DescriptorNode* node = nullptr;     // the node the last entry matched, when it has a limit
  // The counter's name: "domain_key1_value1_key2_value2_", envoyproxy/ratelimit's cache key
  // without its prefix and its time suffix (the store adds the window). A `share_threshold`
  // wildcard level contributes its pattern instead of the value, so all its values share one
  // counter. Empty when no limit applies.
  std::string storage_key;
  // The name envoyproxy/ratelimit gives the limit's statistics ("domain.key1_value1.key2"), with
  // `detailed_metric`, `value_to_metric` and `share_threshold` applied as it applies them.
  std::string stats_key;
  // Set by match_all(): another limit of the same request names this one in its `replaces`. A
  // replaced limit is answered as if no limit applied.
  bool replaced = false;

  // limit(): the limit that applies, or null (unknown domain, no match, or no limit on the
  // matched node). An override limit whose unit is kUnknown has no policy: the front refuses the
  // request, as envoyproxy/ratelimit fails it.
  const RateLimit* limit() const { return override_limit ? &*override_limit : config_limit; }
};

Match match(const Config& config, std::string_view domain, const Descriptor& descriptor);

// match_all(): one Match per descriptor, in order. A limit (not `unlimited`) whose `name` appears
// in the `replaces` of any matched limit of the request (unlimited ones included) is marked
// `replaced`.
std::vector<Match> match_all(const Config& config, std::string_view domain,
                             std::span<const Descriptor> descriptors);

// wildcard_match(): whether `text` matches a pattern given as its parts between '*'s
// (DescriptorNode::Wildcard::parts). Exposed for tests.
bool wildcard_match(std::span<const std::string> parts, std::string_view text);

}  // namespace floodgate::rls
