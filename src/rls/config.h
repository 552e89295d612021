// File: rls/config.h
//
// The envoyproxy/ratelimit configuration, loaded unchanged from its YAML files: one `domain` per
// file, `descriptors` nested to any depth (docs/CONFIG.md, "Envoy rate limit service configs").
// load_config() reads a file, a directory or several of them into a Config, or returns every
// problem found as "file:line:column: path.to.field: what is wrong". Nothing is half-loaded.
//
// What is accepted and refused follows envoyproxy/ratelimit (src/config/config_impl.go): the same
// keys (anything else is refused), the same rules (empty or duplicate domain, empty or duplicate
// key, unknown unit, a unit beside `unlimited`, empty `replaces` entries or one naming its own
// limit, `share_threshold` without a wildcard) and the same message texts after our location.
// One floodgate extension: `rate_limit.floodgate`, a mapping in floodgate's rules-file terms
// (`algorithm`, `limit`, `window`, ...) that runs the limit with another algorithm.
//
// Thread safety: a loaded Config is immutable; share it between threads by const reference or
// shared_ptr<const Config>.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <variant>
#include <vector>

#include "floodgate/policy.h"

namespace floodgate::rls {

// Unit: envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit, numbered as on the wire.
// envoy.type.v3.RateLimitUnit (a request's limit override) uses the same numbers without WEEK.
enum class Unit : std::uint8_t {
  kUnknown = 0,
  kSecond = 1,
  kMinute = 2,
  kHour = 3,
  kDay = 4,
  kMonth = 5,
  kYear = 6,
  kWeek = 7,
};

// to_string(): the wire name in capitals ("MINUTE"). parse_unit() takes any case, as
// envoyproxy/ratelimit does, and refuses UNKNOWN and anything else with nullopt.
std::string_view to_string(Unit unit);
std::optional<Unit> parse_unit(std::string_view name);
// unit_duration(): the window of a unit as envoyproxy/ratelimit counts it: MONTH is 30 days, YEAR
// 365 days, WEEK 7 days; zero for kUnknown.
std::chrono::seconds unit_duration(Unit unit);

// Where a node was written, for messages and `floodgate validate`.
struct SourceLocation {
  std::string file;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
};

// RateLimit: the `rate_limit` of a descriptor, with the descriptor-level flags that belong to it
// (`shadow_mode`, `quota_mode`, `detailed_metric`: envoyproxy/ratelimit keeps them on its limit).
struct RateLimit {
  std::uint32_t requests_per_unit = 0;
  Unit unit = Unit::kUnknown;  // kUnknown only when `unlimited`
  std::string name;
  std::vector<std::string> replaces;  // names of limits this one replaces in the same request
  bool unlimited = false;
  bool shadow_mode = false;
  bool quota_mode = false;
  bool detailed_metric = false;
  // The floodgate policy that counts this limit: fixed_window(requests_per_unit, unit), windows
  // aligned to the Unix epoch, unless `rate_limit.floodgate` asks for another. Absent when the
  // limit is `unlimited` (the store is never asked) or when `requests_per_unit` is 0 (envoyproxy/
  // ratelimit then answers every request OVER_LIMIT).
  std::optional<Policy> policy;
  // Whether `rate_limit.floodgate` chose the policy.
  bool floodgate_extension = false;
};

// DescriptorNode: one entry of a `descriptors` list, its limit and its children.
struct DescriptorNode {
  std::string key;
  std::string value;  // empty: the value-less form, which matches any value of `key`
  // The name envoyproxy/ratelimit looks a node up by: `key`, or `key_value` with a value. A '*'
  // anywhere in it (in practice in the value) makes the node a wildcard.
  std::string lookup_key;
  std::optional<RateLimit> rate_limit;
  bool value_to_metric = false;
  bool share_threshold = false;  // only on wildcard nodes
  // `metadata` as JSON text (an object), for the response's dynamic metadata; empty when absent.
  std::string metadata_json;
  SourceLocation where;

  std::vector<DescriptorNode> children;  // in config order
  // Children by lookup_key, and the wildcard children in config order, each pattern split on '*'.
  struct Wildcard {
    std::size_t child = 0;
    std::vector<std::string> parts;
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> by_lookup_key;
  std::vector<Wildcard> wildcards;

  const DescriptorNode* find(std::string_view lookup) const {
    auto it = by_lookup_key.find(lookup);
    return it == by_lookup_key.end() ? nullptr : &children[it->second];
  }
};

// Domain: a `domain` and its top-level descriptors (held as the children of `root`).
struct Domain {
  std::string name;
  DescriptorNode root;
  std::vector<std::string> files;  // more than one only when domains are merged
};

struct Config {
  std::unordered_map<std::string, Domain, DescriptorNode::Hash, std::equal_to<>> domains;
  std::vector<std::string> files;  // every file loaded, in load order
  // Things accepted for compatibility that are probably mistakes (a known key in a place where
  // envoyproxy/ratelimit ignores it, a mapping key given twice), as "file:line:col: message".
  std::vector<std::string> warnings;

  const Domain* find(std::string_view domain) const {
    auto it = domains.find(domain);
    return it == domains.end() ? nullptr : &it->second;
  }
  // limit_count(): the descriptors that carry a rate_limit, over every domain.
  std::size_t limit_count() const;
};

struct LoadErrors {
  std::vector<std::string> messages;
};

struct LoadOptions {
  // envoyproxy/ratelimit's MERGE_DOMAIN_CONFIG: files naming the same domain add their
  // descriptors to it instead of being refused.
  bool merge_domains = false;
};

// load_config(): `path` is a file, or a directory whose *.yaml and *.yml files are read
// recursively in path order, skipping names that start with '.' (a Kubernetes ConfigMap's
// `..data` links would load every file twice). An empty directory is an error.
std::variant<Config, LoadErrors> load_config(const std::string& path,
                                             const LoadOptions& options = {});
// config_files(): the files load_config() reads for `path`, in that order: `path` itself when it
// is not a directory.
std::vector<std::string> config_files(const std::string& path, std::error_code& ec);
// The same over several paths, loaded into one Config (domains must differ across them too).
std::variant<Config, LoadErrors> load_config(const std::vector<std::string>& paths,
                                             const LoadOptions& options = {});

// One file's text; `source` names it in messages.
struct ConfigText {
  std::string source;
  std::string text;
};
std::variant<Config, LoadErrors> load_config_texts(const std::vector<ConfigText>& files,
                                                   const LoadOptions& options = {});
std::variant<Config, LoadErrors> load_config_text(const std::string& text,
                                                  const std::string& source,
                                                  const LoadOptions& options = {});

// describe(): one line per domain and per limit, for `floodgate validate`, e.g.
//   "domain rl (main/example.yaml): 14 limit(s)"
//   "  rl.foo.bar_banned: 0 per MINUTE name=banned_limit"
std::string describe(const Config& config);

// dump(): envoyproxy/ratelimit's /rlconfig text, one line per limit, domains by name and
// descriptors in config order, e.g.
//   "rl.foo_bar: unit=MINUTE requests_per_unit=10, shadow_mode: false, quota_mode: false"
// (an `unlimited` limit shows unit=UNKNOWN requests_per_unit=0, as there).
std::string dump(const Config& config);

}  // namespace floodgate::rls
