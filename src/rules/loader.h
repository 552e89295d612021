// File: rules/loader.h
//
// load_rules(): reads a floodgate rules file (YAML, docs/CONFIG.md) into a RuleSet, or returns
// every problem found as "file:line:column: path.to.field: what is wrong". Nothing is half-loaded:
// a file with any error yields no RuleSet, so a reload keeps the last good one.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "floodgate/policy_spec.h"
#include "rules/rule_set.h"

namespace floodgate::rules {

struct LoadErrors {
  std::vector<std::string> messages;
};

std::variant<RuleSet, LoadErrors> load_rules(const std::string& path,
                                             const PolicyDefaults& defaults);
// load_rules_text(): the same, from text (`source` names it in messages).
std::variant<RuleSet, LoadErrors> load_rules_text(const std::string& text,
                                                  const std::string& source,
                                                  const PolicyDefaults& defaults);

// FileSetting: one entry of the rules file's `settings` section, a server setting named as its
// flag without the dashes (`store_timeout_ms: 20` is --store-timeout-ms), its value as text and
// where it was written ("file:line:column"). Flags and the environment take precedence over it;
// app/settings.h applies and checks these (names, ranges) as it does the flags.
struct FileSetting {
  std::string name;
  std::string value;
  std::string where;
};

// load_settings(): the `settings` section alone (empty when the file has none), read before the
// rules since it may hold their defaults. A value must be a scalar; other problems of the file
// are load_rules()'s to report. `path` must be readable.
std::variant<std::vector<FileSetting>, LoadErrors> load_settings(const std::string& path);
std::variant<std::vector<FileSetting>, LoadErrors> load_settings_text(const std::string& text,
                                                                      const std::string& source);

// is_envoy_config(): whether `text` is an envoyproxy/ratelimit config (a top-level `domain` or
// `descriptors`) rather than a floodgate rules file. Files are told apart by content, not by name.
bool is_envoy_config(const std::string& text);

// describe(): the effective rules, one per line, for `floodgate validate`.
std::string describe(const RuleSet& rules);

}  // namespace floodgate::rules
