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

// is_envoy_config(): whether `text` is an envoyproxy/ratelimit config (a top-level `domain` or
// `descriptors`) rather than a floodgate rules file. Files are told apart by content, not by name.
bool is_envoy_config(const std::string& text);

// describe(): the effective rules, one per line, for `floodgate validate`.
std::string describe(const RuleSet& rules);

}  // namespace floodgate::rules
