// yaml-cpp stays in this file: it throws, and its exceptions carry the line and column we report.
#include "rules/loader.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>
#include <boost/algorithm/string/case_conv.hpp>

namespace floodgate::rules {
namespace {

class Loader {
 public:
  Loader(std::string source, const PolicyDefaults& defaults)
      : source_(std::move(source)), defaults_(defaults) {}

  std::variant<RuleSet, LoadErrors> load(const YAML::Node& root) {
    RuleSet set;
    set.source = source_;
    if (!root.IsDefined() || root.IsNull()) {
      return set;  // an empty file: no rules
    }
    if (!root.IsMap()) {
      fail(root, "", "the file must be a mapping with a 'rules' section");
      return errors_;
    }
    // The rules first, wherever the file puts them: `auth` names them. `settings` is
    // load_settings()'s, read before the rules.
    const auto sections = entries(root, "", {"rules", "auth", "settings"});
    for (const auto& [key, value] : sections) {
      if (key == "rules") load_rules_section(value, set);
    }
    for (const auto& [key, value] : sections) {
      if (key == "auth") load_auth(value, set);
    }
    if (set.auth_rule && !set.find(*set.auth_rule)) {
      fail(root["auth"]["rule"], "auth.rule",
           "names no rule in this file: '" + *set.auth_rule + "'");
    }
    if (!errors_.messages.empty()) return errors_;
    return set;
  }

  // load_settings_section(): the `settings` mapping's entries, scalars only.
  std::variant<std::vector<FileSetting>, LoadErrors> load_settings_section(const YAML::Node& root) {
    std::vector<FileSetting> out;
    if (!root.IsMap() || !root["settings"].IsDefined() || root["settings"].IsNull()) return out;
    const YAML::Node section = root["settings"];
    if (!section.IsMap()) {
      fail(section, "settings", "must be a mapping of setting names to values");
      return errors_;
    }
    for (const auto& [key, value] : entries(section, "settings", {})) {
      if (!value.IsScalar()) {
        fail(value, "settings." + key, "must be a single value, not a list or a mapping");
        continue;
      }
      out.push_back({key, value.Scalar(), location(value)});
    }
    if (!errors_.messages.empty()) return errors_;
    return out;
  }

  std::string location(const YAML::Node& at) const {
    const YAML::Mark mark = at.Mark();
    std::ostringstream out;
    out << source_;
    if (!mark.is_null()) out << ':' << mark.line + 1 << ':' << mark.column + 1;
    return out.str();
  }

  void fail(const YAML::Node& at, std::string_view path, std::string message) {
    const YAML::Mark mark = at.Mark();
    std::ostringstream out;
    out << source_;
    if (!mark.is_null()) out << ':' << mark.line + 1 << ':' << mark.column + 1;
    out << ": ";
    if (!path.empty()) out << path << ": ";
    out << message;
    errors_.messages.push_back(out.str());
  }

 private:
  // entries(): a mapping's (key, value) pairs in order; refuses duplicate and unknown keys.
  std::vector<std::pair<std::string, YAML::Node>> entries(
      const YAML::Node& map, const std::string& path,
      std::initializer_list<std::string_view> known) {
    std::vector<std::pair<std::string, YAML::Node>> out;
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string key = it->first.Scalar();
      const std::string child = path.empty() ? key : path + "." + key;
      if (!it->first.IsScalar()) {
        fail(it->first, path, "keys must be plain names");
        continue;
      }
      if (!seen.insert(key).second) {
        fail(it->first, child, "appears more than once");
        continue;
      }
      if (known.size() > 0 && std::find(known.begin(), known.end(), key) == known.end()) {
        fail(it->first, child, "is not a known field");
        continue;
      }
      out.emplace_back(key, it->second);
    }
    return out;
  }

  std::optional<Number> number(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar()) {
      fail(node, path, "must be a number");
      return std::nullopt;
    }
    const std::string& s = node.Scalar();
    if (auto n = parse_number(s)) return n;
    fail(node, path, "must be a number, got '" + s + "'");
    return std::nullopt;
  }

  std::optional<std::string> text(const YAML::Node& node, const std::string& path) {
    if (!node.IsScalar() || node.Scalar().empty()) {
      fail(node, path, "must be a non-empty string");
      return std::nullopt;
    }
    return node.Scalar();
  }

  // A policy from the fields of `map` that describe one; `path` names it in messages.
  std::optional<Policy> policy(const YAML::Node& map, const std::string& path,
                               const std::vector<std::pair<std::string, YAML::Node>>& fields,
                               const PolicySpec& base) {
    PolicySpec spec = base;
    for (const auto& [key, value] : fields) {
      const std::string at = path + "." + key;
      if (key == "algorithm") spec.algorithm = text(value, at);
      if (key == "limit") spec.limit = number(value, at);
      if (key == "capacity") spec.capacity = number(value, at);
      if (key == "burst") spec.burst = number(value, at);
      if (key == "refill_rate") spec.refill_rate = number(value, at);
      if (key == "leak_rate") spec.leak_rate = number(value, at);
      if (key == "window") spec.window = number(value, at);
      if (key == "window_ms") spec.window_ms = number(value, at);
    }
    auto built = build_policy(spec, defaults_);
    if (!built) {
      // Point at the offending field when it is in this mapping, else at the mapping itself.
      const YAML::Node field = map[built.error().field];
      fail(field.IsDefined() ? field : map, path + "." + built.error().field,
           built.error().message);
      return std::nullopt;
    }
    return *built;
  }

  void load_rules_section(const YAML::Node& rules, RuleSet& set) {
    if (!rules.IsMap()) {
      fail(rules, "rules", "must be a mapping of rule names to rules");
      return;
    }
    for (const auto& [name, node] : entries(rules, "rules", {})) {
      const std::string path = "rules." + name;
      if (!node.IsMap()) {
        fail(node, path, "must be a mapping");
        continue;
      }
      std::vector<std::pair<std::string, YAML::Node>> policy_fields;
      Rule rule{name, Policy::token_bucket(1, 1).value(), std::nullopt, {}, std::nullopt};
      std::optional<YAML::Node> tiers;
      for (auto& [key, value] :
           entries(node, path,
                   {"algorithm", "limit", "capacity", "burst", "refill_rate", "leak_rate", "window",
                    "window_ms", "failure_mode", "key", "tiers"})) {
        if (key == "failure_mode") {
          if (auto t = text(value, path + ".failure_mode")) {
            rule.failure_mode = parse_failure_mode(*t);
            if (!rule.failure_mode) {
              fail(value, path + ".failure_mode", "must be fail_open, fail_closed or local");
            }
          }
        } else if (key == "key") {
          load_key(value, path + ".key", rule);
        } else if (key == "tiers") {
          tiers = value;
        } else {
          policy_fields.emplace_back(key, value);
        }
      }
      auto p = policy(node, path, policy_fields, PolicySpec{});
      if (!p) continue;
      rule.policy = *p;
      if (tiers) load_tiers(*tiers, path + ".tiers", policy_fields, rule);
      set.rules.emplace(name, std::move(rule));
    }
  }

  void load_key(const YAML::Node& node, const std::string& path, Rule& rule) {
    std::vector<YAML::Node> parts;
    if (node.IsSequence()) {
      for (const auto& part : node) parts.push_back(part);
    } else {
      parts.push_back(node);
    }
    for (const auto& part : parts) {
      auto t = text(part, path);
      if (!t) continue;
      if (*t == "ip") {
        rule.key.push_back({KeyPart::Kind::kIp, {}});
      } else if (*t == "api_key") {
        rule.key.push_back({KeyPart::Kind::kApiKey, {}});
      } else if (*t == "uri") {
        rule.key.push_back({KeyPart::Kind::kUri, {}});
      } else if (t->rfind("header:", 0) == 0 && t->size() > 7) {
        rule.key.push_back({KeyPart::Kind::kHeader, t->substr(7)});
      } else {
        fail(part, path, "must be ip, api_key, uri or header:<Name>, got '" + *t + "'");
      }
    }
  }

  void load_tiers(const YAML::Node& node, const std::string& path,
                  const std::vector<std::pair<std::string, YAML::Node>>& rule_fields, Rule& rule) {
    if (!node.IsMap()) {
      fail(node, path, "must be a mapping of tier names to parameters");
      return;
    }
    Tiers tiers;
    // A tier starts from the rule's own parameters and overrides what it names.
    bool by_given = false;
    for (auto& [key, value] : entries(node, path, {})) {
      const std::string at = path + "." + key;
      if (key == "by") {
        by_given = true;
        auto t = text(value, at);
        if (!t) continue;
        if (*t == "key_prefix") {
          tiers.header.clear();
        } else if (t->rfind("header:", 0) == 0 && t->size() > 7) {
          tiers.header = t->substr(7);
        } else {
          fail(value, at, "must be key_prefix or header:<Name>, got '" + *t + "'");
        }
      } else if (key == "default") {
        tiers.fallback = text(value, at);
      } else if (!value.IsMap()) {
        fail(value, at, "must be a mapping of parameters");
      } else {
        std::vector<std::pair<std::string, YAML::Node>> fields = rule_fields;
        for (auto& field : entries(value, at,
                                   {"algorithm", "limit", "capacity", "burst", "refill_rate",
                                    "leak_rate", "window", "window_ms"})) {
          std::erase_if(fields, [&](const auto& f) { return f.first == field.first; });
          fields.push_back(field);
        }
        if (auto p = policy(value, at, fields, PolicySpec{})) tiers.policies.emplace(key, *p);
      }
    }
    if (!by_given) fail(node, path + ".by", "is required: key_prefix or header:<Name>");
    if (tiers.fallback && !tiers.policies.contains(*tiers.fallback)) {
      fail(node["default"], path + ".default", "names no tier: '" + *tiers.fallback + "'");
    }
    rule.tiers = std::move(tiers);
  }

  void load_auth(const YAML::Node& node, RuleSet& set) {
    if (!node.IsMap()) {
      fail(node, "auth", "must be a mapping");
      return;
    }
    for (auto& [key, value] : entries(node, "auth", {"rule", "routes"})) {
      if (key == "rule") set.auth_rule = text(value, "auth.rule");
      if (key == "routes") load_auth_routes(value, set);
    }
  }

  // auth.routes: [{path, method?, rule}], kept longest path first (a method's before any-method's
  // of the same path), so the first match is the most specific.
  void load_auth_routes(const YAML::Node& node, RuleSet& set) {
    if (!node.IsSequence()) {
      fail(node, "auth.routes", "must be a list of {path, method, rule}");
      return;
    }
    std::set<std::pair<std::string, std::string>> seen;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const YAML::Node item = node[i];
      const std::string at = "auth.routes[" + std::to_string(i) + "]";
      if (!item.IsMap()) {
        fail(item, at, "must be a mapping of path, method and rule");
        continue;
      }
      AuthRoute route;
      bool complete = true;
      for (auto& [key, value] : entries(item, at, {"path", "method", "rule"})) {
        const std::string field = at + "." + key;
        const auto v = text(value, field);
        if (!v) {
          complete = false;
          continue;
        }
        if (key == "path") {
          if (v->front() != '/' || v->find_first_of("?# ") != std::string::npos) {
            fail(value, field, "must be a path starting with '/', without a query");
            complete = false;
          }
          route.path = *v;
        } else if (key == "method") {
          route.method = boost::algorithm::to_upper_copy(*v);
          if (route.method.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ-") != std::string::npos) {
            fail(value, field, "must be an HTTP method such as GET or POST");
            complete = false;
          }
        } else {
          route.rule = *v;
          if (!set.find(route.rule)) {
            fail(value, field, "names no rule in this file: '" + route.rule + "'");
            complete = false;
          }
        }
      }
      for (const char* required : {"path", "rule"}) {
        if (!item[required].IsDefined()) {
          fail(item, at + "." + required, "is required");
          complete = false;
        }
      }
      if (!complete) continue;
      if (!seen.emplace(route.path, route.method).second) {
        fail(item, at, "another route has the same path and method");
        continue;
      }
      set.auth_routes.push_back(std::move(route));
    }
    std::stable_sort(set.auth_routes.begin(), set.auth_routes.end(),
                     [](const AuthRoute& a, const AuthRoute& b) {
                       if (a.path.size() != b.path.size()) return a.path.size() > b.path.size();
                       return !a.method.empty() && b.method.empty();
                     });
  }

  std::string source_;
  const PolicyDefaults& defaults_;
  LoadErrors errors_;
};

// The YAML parser's own error (bad syntax), at its line and column.
LoadErrors syntax_error(const YAML::Exception& e, const std::string& source) {
  std::ostringstream out;
  out << source;
  if (!e.mark.is_null()) out << ':' << e.mark.line + 1 << ':' << e.mark.column + 1;
  out << ": " << e.msg;
  return LoadErrors{{out.str()}};
}

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::variant<RuleSet, LoadErrors> load_rules_text(const std::string& text,
                                                  const std::string& source,
                                                  const PolicyDefaults& defaults) {
  Loader loader(source, defaults);
  try {
    return loader.load(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return syntax_error(e, source);
  }
}

std::variant<RuleSet, LoadErrors> load_rules(const std::string& path,
                                             const PolicyDefaults& defaults) {
  const auto text = read_text(path);
  if (!text) return LoadErrors{{path + ": cannot be read"}};
  return load_rules_text(*text, path, defaults);
}

std::variant<std::vector<FileSetting>, LoadErrors> load_settings_text(const std::string& text,
                                                                      const std::string& source) {
  Loader loader(source, PolicyDefaults{});
  try {
    return loader.load_settings_section(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return syntax_error(e, source);
  }
}

std::variant<std::vector<FileSetting>, LoadErrors> load_settings(const std::string& path) {
  const auto text = read_text(path);
  if (!text) return LoadErrors{{path + ": cannot be read"}};
  return load_settings_text(*text, path);
}

bool is_envoy_config(const std::string& text) {
  try {
    const YAML::Node root = YAML::Load(text);
    // `descriptors` alone counts too: a config missing its domain is a bad envoy config, not a
    // rules file with unknown fields.
    return root.IsMap() && (root["domain"].IsDefined() || root["descriptors"].IsDefined());
  } catch (const YAML::Exception&) {
    return false;
  }
}

std::string describe(const RuleSet& set) {
  std::ostringstream out;
  for (const auto& [name, rule] : set.rules) {
    out << name << ": " << rule.policy;
    if (rule.failure_mode) out << " failure_mode=" << to_string(*rule.failure_mode);
    out << '\n';
    if (rule.tiers) {
      for (const auto& [tier, policy] : rule.tiers->policies) {
        out << "  tier " << tier << ": " << policy << '\n';
      }
    }
  }
  if (set.auth_rule) out << "auth: rule " << *set.auth_rule << '\n';
  for (const AuthRoute& route : set.auth_routes) {
    out << "auth: " << (route.method.empty() ? "*" : route.method) << ' ' << route.path
        << " -> rule " << route.rule << '\n';
  }
  return out.str();
}

}  // namespace floodgate::rules
