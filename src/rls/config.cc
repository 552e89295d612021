// Loads envoyproxy/ratelimit YAML in two passes, as envoyproxy/ratelimit does: first the strict key
// check over the whole document (every mapping key a string and one of its known keys, every list
// a list of mappings, no fractional numbers), then the typed read and the semantic rules. A file
// that fails the first pass is not read further, so its messages are the ones envoyproxy/ratelimit
// would give first. yaml-cpp stays in this file.
#include "rls/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "core/json_text.h"
#include "floodgate/policy_spec.h"

namespace floodgate::rls {

namespace {

constexpr Unit kUnits[] = {Unit::kSecond, Unit::kMinute, Unit::kHour, Unit::kDay,
                           Unit::kMonth,  Unit::kYear,   Unit::kWeek};

// The keys envoyproxy/ratelimit accepts, anywhere in a document (its `validKeys`). A key that is
// known but misplaced (a `unit` beside `key`) passes its check and is then ignored by its typed
// read; we do the same and warn.
constexpr std::string_view kValidKeys[] = {"domain",
                                           "key",
                                           "value",
                                           "descriptors",
                                           "rate_limit",
                                           "unit",
                                           "requests_per_unit",
                                           "unlimited",
                                           "shadow_mode",
                                           "quota_mode",
                                           "name",
                                           "replaces",
                                           "detailed_metric",
                                           "value_to_metric",
                                           "share_threshold",
                                           "metadata"};
// Our extension, accepted under `rate_limit` only.
constexpr std::string_view kExtensionKey = "floodgate";
constexpr std::string_view kExtensionFields[] = {
    "algorithm", "limit", "capacity", "burst", "refill_rate", "leak_rate", "window", "window_ms"};

bool is_valid_key(std::string_view key) {
  return std::find(std::begin(kValidKeys), std::end(kValidKeys), key) != std::end(kValidKeys);
}

// --- YAML 1.1 scalars, as gopkg.in/yaml.v2 resolves them ---------------------------------------

enum class ScalarKind { kNull, kBool, kInt, kFloat, kString };

bool is_yaml11_bool(std::string_view s, bool* value = nullptr) {
  static constexpr std::string_view kTrue[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                               "True", "TRUE", "on",  "On",  "ON"};
  static constexpr std::string_view kFalse[] = {"n",     "N",     "no",  "No",  "NO", "false",
                                                "False", "FALSE", "off", "Off", "OFF"};
  for (auto t : kTrue) {
    if (s == t) {
      if (value) *value = true;
      return true;
    }
  }
  for (auto f : kFalse) {
    if (s == f) {
      if (value) *value = false;
      return true;
    }
  }
  return false;
}

// An integer as Go's strconv.ParseInt(s, 0, 64) reads it after yaml.v2 drops the underscores:
// optional sign, then decimal, 0x hex, 0o or leading-0 octal, or 0b binary.
std::optional<std::int64_t> parse_yaml11_int(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (c != '_') s += c;
  }
  if (s.empty()) return std::nullopt;
  bool negative = false;
  std::size_t i = 0;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    i = 1;
  }
  int base = 10;
  if (s.size() - i > 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16;
    i += 2;
  } else if (s.size() - i > 2 && s[i] == '0' && (s[i + 1] == 'o' || s[i + 1] == 'O')) {
    base = 8;
    i += 2;
  } else if (s.size() - i > 2 && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'B')) {
    base = 2;
    i += 2;
  } else if (s.size() - i > 1 && s[i] == '0') {
    base = 8;
    i += 1;
  }
  if (i >= s.size()) return std::nullopt;
  std::uint64_t magnitude = 0;
  auto [p, ec] = std::from_chars(s.data() + i, s.data() + s.size(), magnitude, base);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  if (!negative && magnitude > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
  if (negative && magnitude > static_cast<std::uint64_t>(INT64_MAX) + 1) return std::nullopt;
  return negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
}

bool is_yaml11_float(std::string_view s) {
  static const std::regex kFloat(R"(^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$)");
  static constexpr std::string_view kSpecial[] = {".inf",  ".Inf",  ".INF",  "+.inf",
                                                  "+.Inf", "+.INF", "-.inf", "-.Inf",
                                                  "-.INF", ".nan",  ".NaN",  ".NAN"};
  if (std::find(std::begin(kSpecial), std::end(kSpecial), s) != std::end(kSpecial)) return true;
  return std::regex_match(std::string(s), kFloat);
}

ScalarKind kind_of(const YAML::Node& node) {
  if (node.IsNull()) return ScalarKind::kNull;
  const std::string& tag = node.Tag();
  // Quoted scalars carry the tag "!"; only plain ones ("?") are resolved.
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return ScalarKind::kString;
  const std::string& s = node.Scalar();
  if (tag == "tag:yaml.org,2002:int") return ScalarKind::kInt;
  if (tag == "tag:yaml.org,2002:float") return ScalarKind::kFloat;
  if (tag == "tag:yaml.org,2002:bool") return ScalarKind::kBool;
  if (is_yaml11_bool(s)) return ScalarKind::kBool;
  if (parse_yaml11_int(s)) return ScalarKind::kInt;
  if (is_yaml11_float(s)) return ScalarKind::kFloat;
  return ScalarKind::kString;
}

std::string json_escape(std::string_view s) {
  std::string out;
  core::append_json_string(out, s);
  return out;
}

// `metadata` as JSON, typed as yaml.v2 reads it (numbers, booleans, null, strings).
std::string to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    std::string out = "{";
    bool first = true;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!first) out += ',';
      first = false;
      out += json_escape(it->first.IsScalar() ? it->first.Scalar() : std::string("?"));
      out += ':';
      out += to_json(it->second);
    }
    return out + "}";
  }
  if (node.IsSequence()) {
    std::string out = "[";
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (i) out += ',';
      out += to_json(node[i]);
    }
    return out + "]";
  }
  switch (kind_of(node)) {
    case ScalarKind::kNull:
      return "null";
    case ScalarKind::kBool: {
      bool b = false;
      is_yaml11_bool(node.Scalar(), &b);
      return b ? "true" : "false";
    }
    case ScalarKind::kInt:
      if (auto i = parse_yaml11_int(node.Scalar())) return std::to_string(*i);
      return json_escape(node.Scalar());
    case ScalarKind::kFloat: {
      const std::string& s = node.Scalar();
      double d = 0;
      auto [p, ec] = std::from_chars(s.data() + (s[0] == '+' ? 1 : 0), s.data() + s.size(), d);
      if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) {
        std::ostringstream out;
        out.precision(17);
        out << d;
        return out.str();
      }
      return json_escape(s);  // JSON has no infinities or NaN
    }
    case ScalarKind::kString:
      break;
  }
  return json_escape(node.Scalar());
}

std::string describe_value(const YAML::Node& node) {
  if (node.IsNull()) return "<nil>";
  if (node.IsScalar()) return node.Scalar();
  return node.IsMap() ? "a mapping" : "a list";
}

// --- one file -------------------------------------------------------------------------------

using Fields = std::vector<std::pair<std::string, YAML::Node>>;

class FileLoader {
 public:
  FileLoader(std::string source, Config& config, const LoadOptions& options)
      : source_(std::move(source)), config_(config), options_(options) {}

  // Returns false when the file had errors (appended to `errors`).
  bool load(const YAML::Node& root, LoadErrors& errors) {
    if (root.IsDefined() && !root.IsNull() && !root.IsMap()) {
      fail(
          root, "",
          "error loading config file: the document must be a mapping, not " + describe_value(root));
    } else if (root.IsMap()) {
      check_keys(root, "", /*under_rate_limit=*/false);
    }
    if (errors_.empty()) load_root(root);
    for (auto& m : errors_) errors.messages.push_back(std::move(m));
    return errors_.empty();
  }

 private:
  std::string location(const YAML::Node& at) const {
    std::ostringstream out;
    out << source_;
    const YAML::Mark mark = at.Mark();
    if (!mark.is_null()) out << ':' << mark.line + 1 << ':' << mark.column + 1;
    return out.str();
  }

  void fail(const YAML::Node& at, std::string_view path, const std::string& message) {
    std::string m = location(at) + ": ";
    if (!path.empty()) (m += path) += ": ";
    errors_.push_back(m + message);
  }
  void warn(const YAML::Node& at, std::string_view path, const std::string& message) {
    std::string m = location(at) + ": ";
    if (!path.empty()) (m += path) += ": ";
    config_.warnings.push_back(m + message);
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
  }

  // Pass 1: envoyproxy/ratelimit's validateYamlKeys.
  void check_keys(const YAML::Node& map, const std::string& path, bool under_rate_limit) {
    std::set<std::string> seen;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const YAML::Node k = it->first;  // a handle: it->first is a temporary
      if (!k.IsScalar() || kind_of(k) != ScalarKind::kString) {
        fail(k, path, "config error, key is not of type string: " + describe_value(k));
        continue;
      }
      const std::string& key = k.Scalar();
      const std::string at = join(path, key);
      if (under_rate_limit && key == kExtensionKey) continue;  // checked when read
      if (!is_valid_key(key)) {
        fail(k, path, "config error, unknown key '" + key + "'");
        continue;
      }
      if (!seen.insert(key).second) {
        warn(k, at, "given twice; the last one counts (as in envoyproxy/ratelimit)");
      }
      if (key == "metadata") continue;  // arbitrary content
      const YAML::Node v = it->second;
      if (v.IsSequence()) {
        for (std::size_t i = 0; i < v.size(); ++i) {
          const std::string item = at + "[" + std::to_string(i) + "]";
          if (!v[i].IsMap()) {
            fail(v[i], item,
                 "config error, yaml file contains list of type other than map: " +
                     describe_value(v[i]));
            continue;
          }
          check_keys(v[i], item, false);
        }
      } else if (v.IsMap()) {
        check_keys(v, at, key == "rate_limit");
      } else if (v.IsScalar() && kind_of(v) == ScalarKind::kFloat) {
        fail(v, at,
             "error checking config: '" + v.Scalar() +
                 "' is a fractional number, which envoyproxy/ratelimit refuses here (quote it "
                 "if it is text)");
      }
    }
  }

  // Pass 2: the typed read. `fields` keeps the last of repeated keys, as yaml.v2 does.
  Fields fields(const YAML::Node& map, const std::string& path,
                std::initializer_list<std::string_view> used) {
    Fields out;
    for (auto it = map.begin(); it != map.end(); ++it) {
      const std::string& key = it->first.Scalar();
      if (std::find(used.begin(), used.end(), key) == used.end()) {
        warn(it->first, join(path, key), "is not read here and has no effect");
        continue;
      }
      std::erase_if(out, [&](const auto& f) { return f.first == key; });
      out.emplace_back(key, it->second);
    }
    return out;
  }

  std::optional<std::string> text(const YAML::Node& node, const std::string& path) {
    if (node.IsNull()) return std::string();
    if (!node.IsScalar()) {
      fail(node, path, "error loading config file: must be a string, not " + describe_value(node));
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<bool> flag(const YAML::Node& node, const std::string& path) {
    if (node.IsNull()) return false;
    bool value = false;
    if (node.IsScalar() && kind_of(node) == ScalarKind::kBool &&
        (is_yaml11_bool(node.Scalar(), &value) || node.Tag() == "tag:yaml.org,2002:bool")) {
      return value;
    }
    fail(node, path,
         "error loading config file: must be true or false, not " + describe_value(node));
    return std::nullopt;
  }

  std::optional<std::uint32_t> count(const YAML::Node& node, const std::string& path) {
    if (node.IsNull()) return 0u;
    if (node.IsScalar() && kind_of(node) == ScalarKind::kInt) {
      if (auto i = parse_yaml11_int(node.Scalar()); i && *i >= 0 && *i <= UINT32_MAX) {
        return static_cast<std::uint32_t>(*i);
      }
    }
    fail(node, path,
         "error loading config file: must be a whole number from 0 to 4294967295, not " +
             describe_value(node));
    return std::nullopt;
  }

  bool list(const YAML::Node& node, const std::string& path) {
    if (node.IsNull() || node.IsSequence()) return true;
    fail(node, path, "error loading config file: must be a list, not " + describe_value(node));
    return false;
  }

  void load_root(const YAML::Node& root) {
    std::string domain;
    YAML::Node domain_node = root;
    YAML::Node descriptors;
    if (root.IsMap()) {
      for (auto& [key, value] : fields(root, "", {"domain", "descriptors"})) {
        if (key == "domain") {
          if (!value.IsNull()) domain_node.reset(value);  // a null has no useful mark
          if (auto t = text(value, "domain")) domain = *t;
        } else if (list(value, "descriptors")) {
          descriptors.reset(value);
        }
      }
    }
    if (!errors_.empty()) return;
    if (domain.empty()) {
      fail(domain_node, "domain", "config file cannot have empty domain");
      return;
    }
    Domain* target = nullptr;
    if (auto it = config_.domains.find(domain); it != config_.domains.end()) {
      if (!options_.merge_domains) {
        fail(domain_node, "domain",
             "duplicate domain '" + domain + "' in config file (already loaded from " +
                 it->second.files.front() + ")");
        return;
      }
      target = &it->second;
    } else {
      // Loaded aside and moved in only when the file is clean.
      fresh_.name = domain;
      fresh_.root.key = domain;
      fresh_.root.where = {source_, 1, 1};
      target = &fresh_;
    }
    // A merged domain is changed in place; work on a copy so a bad file leaves it as it was.
    Domain work = *target;
    work.files.push_back(source_);
    load_descriptors(descriptors, "descriptors", domain + ".", work.root);
    if (!errors_.empty()) return;
    config_.domains[domain] = std::move(work);
  }

  void load_descriptors(const YAML::Node& list, const std::string& path,
                        const std::string& parent_key, DescriptorNode& parent) {
    if (!list.IsDefined() || list.IsNull()) return;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const YAML::Node& node = list[i];
      const std::string at = path + "[" + std::to_string(i) + "]";
      DescriptorNode d;
      const YAML::Mark mark = node.Mark();
      d.where = {source_, mark.is_null() ? 0 : mark.line + 1, mark.is_null() ? 0 : mark.column + 1};
      YAML::Node rate_limit, children, key_node = node;
      bool ok = true;
      for (auto& [key, value] :
           fields(node, at,
                  {"key", "value", "rate_limit", "descriptors", "shadow_mode", "quota_mode",
                   "detailed_metric", "value_to_metric", "share_threshold", "metadata"})) {
        const std::string field = at + "." + key;
        const YAML::Node& field_value = value;  // clang 14 cannot capture a structured binding
        auto set_flag = [&](bool& target) {
          if (auto b = flag(field_value, field)) {
            target = *b;
          } else {
            ok = false;
          }
        };
        if (key == "key") {
          if (!value.IsNull()) key_node.reset(value);  // a null has no useful mark
          if (auto t = text(value, field))
            d.key = *t;
          else
            ok = false;
        } else if (key == "value") {
          if (auto t = text(value, field))
            d.value = *t;
          else
            ok = false;
        } else if (key == "rate_limit") {
          if (value.IsNull() || value.IsMap()) {
            rate_limit.reset(value);
          } else {
            fail(value, field,
                 "error loading config file: must be a mapping, not " + describe_value(value));
            ok = false;
          }
        } else if (key == "descriptors") {
          if (this->list(value, field))
            children.reset(value);
          else
            ok = false;
        } else if (key == "shadow_mode") {
          set_flag(shadow_mode_);
        } else if (key == "quota_mode") {
          set_flag(quota_mode_);
        } else if (key == "detailed_metric") {
          set_flag(detailed_metric_);
        } else if (key == "value_to_metric") {
          set_flag(d.value_to_metric);
        } else if (key == "share_threshold") {
          set_flag(d.share_threshold);
        } else if (key == "metadata") {
          if (value.IsMap()) {
            if (value.size() > 0) d.metadata_json = to_json(value);
          } else if (!value.IsNull()) {
            fail(value, field,
                 "error parsing metadata: must be a mapping, not " + describe_value(value));
            ok = false;
          }
        }
      }
      const bool shadow_mode = std::exchange(shadow_mode_, false);
      const bool quota_mode = std::exchange(quota_mode_, false);
      const bool detailed_metric = std::exchange(detailed_metric_, false);
      if (!ok) continue;

      if (d.key.empty()) {
        fail(key_node, at + ".key", "descriptor has empty key");
        continue;
      }
      d.lookup_key = d.value.empty() ? d.key : d.key + "_" + d.value;
      const std::string full_key = parent_key + d.lookup_key;
      if (parent.by_lookup_key.contains(d.lookup_key)) {
        fail(key_node, at, "duplicate descriptor composite key '" + full_key + "'");
        continue;
      }
      if (rate_limit.IsDefined() && !rate_limit.IsNull()) {
        d.rate_limit = load_rate_limit(rate_limit, at + ".rate_limit");
        if (!d.rate_limit) continue;
        d.rate_limit->shadow_mode = shadow_mode;
        d.rate_limit->quota_mode = quota_mode;
        d.rate_limit->detailed_metric = detailed_metric;
      }
      const bool wildcard = d.lookup_key.find('*') != std::string::npos;
      if (d.share_threshold && !wildcard) {
        fail(node, at + ".share_threshold",
             "share_threshold can only be used with wildcard values (containing '*'), but found "
             "key '" +
                 d.lookup_key + "'");
        continue;
      }
      load_descriptors(children, at + ".descriptors", full_key + ".", d);

      const std::size_t index = parent.children.size();
      parent.by_lookup_key.emplace(d.lookup_key, index);
      if (wildcard) {
        DescriptorNode::Wildcard w{index, {}};
        std::size_t start = 0;
        for (;;) {
          const std::size_t star = d.lookup_key.find('*', start);
          w.parts.push_back(d.lookup_key.substr(start, star - start));
          if (star == std::string::npos) break;
          start = star + 1;
        }
        parent.wildcards.push_back(std::move(w));
      }
      parent.children.push_back(std::move(d));
    }
  }

  std::optional<RateLimit> load_rate_limit(const YAML::Node& map, const std::string& path) {
    RateLimit rl;
    std::string unit;
    // Node variables that start as a copy of another node are rebound with reset(): yaml-cpp's
    // operator= would write through to the node they were copied from.
    YAML::Node unit_node = map, replaces;
    std::optional<YAML::Node> extension;
    bool rpu_given = false;
    bool ok = true;
    for (auto& [key, value] :
         fields(map, path,
                {"requests_per_unit", "unit", "unlimited", "name", "replaces", kExtensionKey})) {
      const std::string field = path + "." + key;
      if (key == "requests_per_unit") {
        rpu_given = true;
        if (auto n = count(value, field))
          rl.requests_per_unit = *n;
        else
          ok = false;
      } else if (key == "unit") {
        if (!value.IsNull()) unit_node.reset(value);  // a null has no useful mark
        if (auto t = text(value, field))
          unit = *t;
        else
          ok = false;
      } else if (key == "unlimited") {
        if (auto b = flag(value, field))
          rl.unlimited = *b;
        else
          ok = false;
      } else if (key == "name") {
        if (auto t = text(value, field))
          rl.name = *t;
        else
          ok = false;
      } else if (key == "replaces") {
        if (list(value, field))
          replaces.reset(value);
        else
          ok = false;
      } else if (key == kExtensionKey) {
        extension = value;
      }
    }
    if (!ok) return std::nullopt;

    const std::optional<Unit> parsed = parse_unit(unit);
    if (rl.unlimited) {
      if (parsed) {
        fail(unit_node, path + ".unit", "should not specify rate limit unit when unlimited");
        return std::nullopt;
      }
      if (!unit.empty()) {
        warn(unit_node, path + ".unit", "'" + unit + "' is ignored: the limit is unlimited");
      }
      if (rpu_given) {
        warn(map, path + ".requests_per_unit", "is ignored: the limit is unlimited");
      }
    } else if (!parsed) {
      fail(unit_node, path + ".unit", "invalid rate limit unit '" + unit + "'");
      return std::nullopt;
    } else {
      rl.unit = *parsed;
    }

    if (replaces.IsDefined() && !replaces.IsNull()) {
      for (std::size_t i = 0; i < replaces.size(); ++i) {
        const std::string at = path + ".replaces[" + std::to_string(i) + "]";
        std::string name;
        YAML::Node name_node = replaces[i];
        for (auto& [key, value] : fields(replaces[i], at, {"name"})) {
          if (!value.IsNull()) name_node.reset(value);  // a null has no useful mark
          auto t = text(value, at + ".name");
          if (!t) return std::nullopt;
          name = *t;
        }
        if (name.empty()) {
          fail(name_node, at + ".name", "should not have an empty replaces entry");
          return std::nullopt;
        }
        if (name == rl.name) {
          fail(name_node, at + ".name", "replaces should not contain name of same descriptor");
          return std::nullopt;
        }
        rl.replaces.push_back(std::move(name));
      }
    }

    if (extension && !extension->IsNull()) {
      if (rl.unlimited) {
        fail(*extension, path + ".floodgate", "has no effect on an unlimited limit; remove it");
        return std::nullopt;
      }
      auto policy = load_extension(*extension, path + ".floodgate", rl);
      if (!policy) return std::nullopt;
      rl.policy = *policy;
      rl.floodgate_extension = true;
    } else if (!rl.unlimited && rl.requests_per_unit > 0) {
      const auto window = std::chrono::duration_cast<Micros>(unit_duration(rl.unit));
      auto policy = Policy::fixed_window(rl.requests_per_unit, window);
      if (!policy) {
        fail(map, path, policy.error().field + ": " + policy.error().message);
        return std::nullopt;
      }
      rl.policy = *policy;
    }
    return rl;
  }

  std::optional<Number> number(const YAML::Node& node, const std::string& path) {
    if (node.IsScalar()) {
      if (auto n = parse_number(node.Scalar())) return n;
    }
    fail(node, path, "must be a number, got " + describe_value(node));
    return std::nullopt;
  }

  // `rate_limit.floodgate`: the algorithm name alone, or a mapping in rules-file terms. What it
  // leaves out comes from the limit: limit = requests_per_unit, window = the unit.
  std::optional<Policy> load_extension(const YAML::Node& node, const std::string& path,
                                       const RateLimit& rl) {
    PolicySpec spec;
    if (node.IsScalar() && !node.IsNull()) {
      spec.algorithm = node.Scalar();
    } else if (node.IsMap()) {
      std::set<std::string> seen;
      for (auto it = node.begin(); it != node.end(); ++it) {
        const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
        const std::string at = path + "." + key;
        if (std::find(std::begin(kExtensionFields), std::end(kExtensionFields), key) ==
            std::end(kExtensionFields)) {
          fail(it->first, path,
               "unknown key '" + key +
                   "' (algorithm, limit, capacity, burst, refill_rate, leak_rate, window or "
                   "window_ms)");
          return std::nullopt;
        }
        if (!seen.insert(key).second) {
          fail(it->first, at, "appears more than once");
          return std::nullopt;
        }
        const YAML::Node v = it->second;
        if (key == "algorithm") {
          if (!v.IsScalar() || v.Scalar().empty()) {
            fail(v, at, "must be an algorithm name");
            return std::nullopt;
          }
          spec.algorithm = v.Scalar();
          continue;
        }
        auto n = number(v, at);
        if (!n) return std::nullopt;
        if (key == "limit") spec.limit = n;
        if (key == "capacity") spec.capacity = n;
        if (key == "burst") spec.burst = n;
        if (key == "refill_rate") spec.refill_rate = n;
        if (key == "leak_rate") spec.leak_rate = n;
        if (key == "window") spec.window = n;
        if (key == "window_ms") spec.window_ms = n;
      }
    } else {
      fail(node, path, "must be an algorithm name or a mapping of floodgate policy parameters");
      return std::nullopt;
    }
    PolicyDefaults defaults;
    defaults.algorithm = Algorithm::kFixedWindow;
    defaults.limit = rl.requests_per_unit;
    defaults.window = std::chrono::duration_cast<Micros>(unit_duration(rl.unit));
    auto built = build_policy(spec, defaults);
    if (!built) {
      const YAML::Node field = node.IsMap() ? node[built.error().field] : YAML::Node();
      const bool named = field.IsDefined() && !field.IsNull();
      std::string message = built.error().message;
      if (!named && (built.error().field == "limit" || built.error().field == "capacity")) {
        message += " (taken from requests_per_unit)";
      }
      fail(named ? field : node, path + "." + built.error().field, message);
      return std::nullopt;
    }
    return *built;
  }

  std::string source_;
  Config& config_;
  const LoadOptions& options_;
  std::vector<std::string> errors_;
  Domain fresh_;
  // Descriptor-level flags of the descriptor being read (they belong to its RateLimit).
  bool shadow_mode_ = false;
  bool quota_mode_ = false;
  bool detailed_metric_ = false;
};

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool hidden(const std::filesystem::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

// The YAML files under `dir`, recursively, in path order; names starting with '.' are skipped.
std::vector<std::string> yaml_files(const std::filesystem::path& dir, std::error_code& ec) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& p = it->path();
    if (hidden(p)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    const auto ext = p.extension();
    if ((ext == ".yaml" || ext == ".yml") && it->is_regular_file(ec)) files.push_back(p.string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::size_t count_limits(const DescriptorNode& node) {
  std::size_t n = node.rate_limit ? 1 : 0;
  for (const auto& child : node.children) n += count_limits(child);
  return n;
}

void describe_node(const DescriptorNode& node, const std::string& prefix, std::ostream& out) {
  const std::string key = prefix + node.lookup_key;
  if (const auto& rl = node.rate_limit) {
    out << "  " << key << ": ";
    if (rl->unlimited) {
      out << "unlimited";
    } else {
      out << rl->requests_per_unit << " per " << to_string(rl->unit);
    }
    if (!rl->name.empty()) out << " name=" << rl->name;
    for (const auto& r : rl->replaces) out << " replaces=" << r;
    if (rl->shadow_mode) out << " shadow_mode";
    if (rl->quota_mode) out << " quota_mode";
    if (rl->detailed_metric) out << " detailed_metric";
    if (rl->floodgate_extension && rl->policy) out << " floodgate=" << *rl->policy;
    out << '\n';
  }
  for (const auto& child : node.children) describe_node(child, key + ".", out);
}

void dump_node(const DescriptorNode& node, const std::string& prefix, std::ostream& out) {
  const std::string key = prefix + node.lookup_key;
  if (const auto& rl = node.rate_limit) {
    out << key << ": unit=" << to_string(rl->unit) << " requests_per_unit=" << rl->requests_per_unit
        << ", shadow_mode: " << rl->shadow_mode << ", quota_mode: " << rl->quota_mode << '\n';
  }
  for (const auto& child : node.children) dump_node(child, key + ".", out);
}

std::vector<const Domain*> sorted_domains(const Config& config) {
  std::vector<const Domain*> sorted;
  for (const auto& [name, domain] : config.domains) sorted.push_back(&domain);
  std::sort(sorted.begin(), sorted.end(),
            [](const Domain* a, const Domain* b) { return a->name < b->name; });
  return sorted;
}

}  // namespace

std::string_view to_string(Unit unit) {
  switch (unit) {
    case Unit::kSecond:
      return "SECOND";
    case Unit::kMinute:
      return "MINUTE";
    case Unit::kHour:
      return "HOUR";
    case Unit::kDay:
      return "DAY";
    case Unit::kMonth:
      return "MONTH";
    case Unit::kYear:
      return "YEAR";
    case Unit::kWeek:
      return "WEEK";
    case Unit::kUnknown:
      break;
  }
  return "UNKNOWN";
}

std::optional<Unit> parse_unit(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Unit u : kUnits) {
    if (to_string(u) == upper) return u;
  }
  return std::nullopt;
}

std::chrono::seconds unit_duration(Unit unit) {
  using std::chrono::seconds;
  constexpr std::int64_t kDay = 24 * 60 * 60;
  switch (unit) {
    case Unit::kSecond:
      return seconds(1);
    case Unit::kMinute:
      return seconds(60);
    case Unit::kHour:
      return seconds(60 * 60);
    case Unit::kDay:
      return seconds(kDay);
    case Unit::kWeek:
      return seconds(7 * kDay);
    case Unit::kMonth:
      return seconds(30 * kDay);
    case Unit::kYear:
      return seconds(365 * kDay);
    case Unit::kUnknown:
      break;
  }
  return seconds(0);
}

std::size_t Config::limit_count() const {
  std::size_t n = 0;
  for (const auto& [name, domain] : domains) n += count_limits(domain.root);
  return n;
}

std::variant<Config, LoadErrors> load_config_texts(const std::vector<ConfigText>& files,
                                                   const LoadOptions& options) {
  Config config;
  LoadErrors errors;
  for (const ConfigText& file : files) {
    config.files.push_back(file.source);
    YAML::Node root;
    try {
      root = YAML::Load(file.text);
    } catch (const YAML::Exception& e) {
      std::ostringstream out;
      out << file.source;
      if (!e.mark.is_null()) out << ':' << e.mark.line + 1 << ':' << e.mark.column + 1;
      out << ": error loading config file: " << e.msg;
      errors.messages.push_back(out.str());
      continue;
    }
    FileLoader(file.source, config, options).load(root, errors);
  }
  if (!errors.messages.empty()) return errors;
  return config;
}

std::variant<Config, LoadErrors> load_config_text(const std::string& text,
                                                  const std::string& source,
                                                  const LoadOptions& options) {
  return load_config_texts({ConfigText{source, text}}, options);
}

std::vector<std::string> config_files(const std::string& path, std::error_code& ec) {
  if (!std::filesystem::is_directory(path, ec)) {
    ec.clear();
    return {path};
  }
  return yaml_files(path, ec);
}

std::variant<Config, LoadErrors> load_config(const std::vector<std::string>& paths,
                                             const LoadOptions& options) {
  std::vector<ConfigText> texts;
  LoadErrors errors;
  for (const std::string& path : paths) {
    std::error_code ec;
    const std::vector<std::string> files = config_files(path, ec);
    if (ec) {
      errors.messages.push_back(path + ": cannot be read: " + ec.message());
      continue;
    }
    if (files.empty()) {
      errors.messages.push_back(path + ": no .yaml or .yml files");
      continue;
    }
    for (const std::string& file : files) {
      if (auto text = read_text(file)) {
        texts.push_back({file, std::move(*text)});
      } else {
        errors.messages.push_back(file + ": cannot be read");
      }
    }
  }
  if (!errors.messages.empty()) return errors;
  return load_config_texts(texts, options);
}

std::variant<Config, LoadErrors> load_config(const std::string& path, const LoadOptions& options) {
  return load_config(std::vector<std::string>{path}, options);
}

std::string describe(const Config& config) {
  std::ostringstream out;
  for (const Domain* domain : sorted_domains(config)) {
    out << "domain " << domain->name << " (";
    for (std::size_t i = 0; i < domain->files.size(); ++i) {
      out << (i ? ", " : "") << domain->files[i];
    }
    out << "): " << count_limits(domain->root) << " limit(s)\n";
    for (const auto& child : domain->root.children) describe_node(child, domain->name + ".", out);
  }
  return out.str();
}

std::string dump(const Config& config) {
  std::ostringstream out;
  out << std::boolalpha;
  for (const Domain* domain : sorted_domains(config)) {
    for (const auto& child : domain->root.children) dump_node(child, domain->name + ".", out);
  }
  return out.str();
}

}  // namespace floodgate::rls
