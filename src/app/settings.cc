#include "app/settings.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include <CLI/CLI.hpp>
#include <boost/algorithm/string/case_conv.hpp>
#include <boost/algorithm/string/predicate.hpp>

namespace floodgate::app {

void add_settings(CLI::App& cmd, Settings& s) {
  auto opt = [&](const char* flag, auto& value, const char* env, const char* help) {
    return cmd.add_option(flag, value, help)->envname(env)->capture_default_str();
  };
  opt("--host", s.host, "HOST", "Address the HTTP API listens on")->group("HTTP");
  opt("--port", s.port, "PORT", "HTTP API port")->check(CLI::Range(0, 65535))->group("HTTP");
  opt("--threads", s.threads, "THREADS", "Server threads (0: one per core)")
      ->check(CLI::Range(0, 256))
      ->group("HTTP");

  opt("--request-timeout-ms", s.request_timeout_ms, "REQUEST_TIMEOUT_MS",
      "A request must arrive whole within this, once it has started (slow clients are cut off)")
      ->check(CLI::Range(10, 600'000))
      ->group("HTTP");
  opt("--idle-timeout-ms", s.idle_timeout_ms, "IDLE_TIMEOUT_MS",
      "An idle keep-alive connection is closed after this")
      ->check(CLI::Range(10, 3'600'000))
      ->group("HTTP");

  opt("--backend", s.backend, "BACKEND", "Store: memory, redis, redis-cluster or redis-sentinel")
      ->group("Store");
  opt("--redis-url", s.redis_url, "REDIS_URL",
      "redis://[user:password@]host:port/db, rediss:// (TLS); with BACKEND=redis-sentinel "
      "redis+sentinel://[user:password@]host:port,host:port/master-name[/db]; with "
      "BACKEND=redis-cluster redis+cluster://[user:password@]host:port,host:port (any nodes)")
      ->group("Store");
  opt("--redis-addr", s.redis_addr, "REDIS_ADDR", "host:port (when REDIS_URL is not set)")
      ->group("Store");
  opt("--redis-password", s.redis_password, "REDIS_PASSWORD", "Redis password")->group("Store");
  opt("--redis-sentinel-password", s.redis_sentinel_password, "REDIS_SENTINEL_PASSWORD",
      "Password of the sentinels (BACKEND=redis-sentinel)")
      ->group("Store");
  opt("--redis-db", s.redis_db, "REDIS_DB", "Redis database number")
      ->check(CLI::Range(0, 1023))
      ->group("Store");
  opt("--redis-pool-size", s.redis_pool_size, "REDIS_POOL_SIZE",
      "Connections to Redis (each carries many pipelined requests; 2 is plenty)")
      ->check(CLI::Range(1, 64))
      ->group("Store");
  opt("--redis-tls-ca-file", s.redis_tls_ca_file, "REDIS_TLS_CA_FILE",
      "CA certificate(s) that sign the Redis server's (rediss://); default: the system's")
      ->group("Store");
  opt("--redis-tls-insecure", s.redis_tls_insecure, "REDIS_TLS_INSECURE",
      "Do not verify the Redis server's certificate (rediss://); for tests only")
      ->group("Store");
  opt("--store-timeout-ms", s.store_timeout_ms, "STORE_TIMEOUT_MS",
      "Longest wait for the shared store's answer before the failure mode applies")
      ->check(CLI::Range(1, 60'000))
      ->group("Store");
  opt("--store-connect-timeout-ms", s.store_connect_timeout_ms, "STORE_CONNECT_TIMEOUT_MS",
      "Longest wait for a connection to the store to be ready (TCP, TLS, AUTH, scripts)")
      ->check(CLI::Range(10, 60'000))
      ->group("Store");
  opt("--breaker-failures", s.breaker_failures, "BREAKER_FAILURES",
      "Failed store calls in a row (a call carries one check or a batch) that open the circuit "
      "breaker; the failure mode then answers at once")
      ->check(CLI::Range(1, 1'000'000))
      ->group("Store");
  opt("--breaker-cooldown-ms", s.breaker_cooldown_ms, "BREAKER_COOLDOWN_MS",
      "How long the breaker stays open before one check probes the store")
      ->check(CLI::Range(1, 600'000))
      ->group("Store");
  opt("--failure-mode", s.failure_mode, "FAILURE_MODE",
      "When the store cannot answer: fail_open, fail_closed or local")
      ->check(CLI::IsMember({"fail_open", "fail_closed", "local"}))
      ->group("Store");
  opt("--max-keys", s.max_keys, "MAX_KEYS", "Most keys the memory store holds")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))
      ->group("Store");

  opt("--config", s.config_file, "CONFIG_FILE", "YAML file of rules and tiers")->group("Rules");
  const char* rls = "Envoy rate limit service";
  opt("--grpc-port", s.grpc_port, "GRPC_PORT",
      "Port of the Envoy rate limit service (gRPC, RLS v3); 0: any free port; -1: off")
      ->check(CLI::Range(-1, 65535))
      ->group(rls);
  opt("--grpc-host", s.grpc_host, "GRPC_HOST",
      "Address the gRPC service listens on (default: HOST)")
      ->group(rls);
  opt("--grpc-uds", s.grpc_uds, "GRPC_UDS",
      "Unix socket path the gRPC service listens on instead of GRPC_HOST:GRPC_PORT")
      ->group(rls);
  opt("--grpc-threads", s.grpc_threads, "GRPC_THREADS",
      "Threads serving gRPC, each polling its own completion queue (0: half the cores, at least "
      "one; more pollers hand calls to each other, see docs/PERFORMANCE.md)")
      ->check(CLI::Range(0, 256))
      ->group(rls);
  opt("--grpc-max-message-bytes", s.grpc_max_message_bytes, "GRPC_MAX_MESSAGE_BYTES",
      "Larger requests are refused with RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1024, 64 << 20))
      ->group(rls);
  opt("--grpc-tls", s.grpc_tls, "GRPC_SERVER_USE_TLS",
      "Serve gRPC over TLS (the certificate and key files are re-read when they change)")
      ->group(rls);
  opt("--grpc-tls-cert", s.grpc_tls_cert, "GRPC_SERVER_TLS_CERT",
      "PEM certificate chain of the gRPC port (GRPC_SERVER_USE_TLS)")
      ->group(rls);
  opt("--grpc-tls-key", s.grpc_tls_key, "GRPC_SERVER_TLS_KEY",
      "PEM private key of the gRPC port (GRPC_SERVER_USE_TLS)")
      ->group(rls);
  opt("--grpc-client-ca", s.grpc_client_ca, "GRPC_CLIENT_TLS_CACERT",
      "PEM CA certificate(s): gRPC clients must present a certificate it signed (mutual TLS)")
      ->group(rls);
  opt("--grpc-client-san", s.grpc_client_san, "GRPC_CLIENT_TLS_SAN",
      "With GRPC_CLIENT_TLS_CACERT: the DNS or IP name the client certificate must carry")
      ->group(rls);
  opt("--rls-config", s.rls_config, "RLS_CONFIG",
      "envoyproxy/ratelimit YAML file or directory of them (reloaded on SIGHUP and on change)")
      ->group(rls);
  opt("--merge-domain-config", s.merge_domain_config, "MERGE_DOMAIN_CONFIG",
      "Let several files add descriptors to one domain")
      ->group(rls);
  opt("--limit-response-headers", s.limit_response_headers, "LIMIT_RESPONSE_HEADERS_ENABLED",
      "Add RateLimit-Limit/-Remaining/-Reset to responses (response_headers_to_add)")
      ->group(rls);
  opt("--limit-limit-header", s.limit_limit_header, "LIMIT_LIMIT_HEADER",
      "Name of the limit header")
      ->group(rls);
  opt("--limit-remaining-header", s.limit_remaining_header, "LIMIT_REMAINING_HEADER",
      "Name of the remaining header")
      ->group(rls);
  opt("--limit-reset-header", s.limit_reset_header, "LIMIT_RESET_HEADER",
      "Name of the reset header")
      ->group(rls);
  opt("--rls-draft-headers", s.rls_draft_headers, "RLS_DRAFT_HEADERS",
      "Also add the IETF draft's RateLimit-Policy and RateLimit fields")
      ->group(rls);
  opt("--shadow-mode", s.shadow_mode, "SHADOW_MODE",
      "Answer OK to everything, counting what would have been limited")
      ->group(rls);
  opt("--quota-mode", s.quota_mode, "QUOTA_MODE", "Treat every limit as in quota_mode")->group(rls);
  opt("--redis-health-check-active-connection", s.redis_health_check_active_connection,
      "REDIS_HEALTH_CHECK_ACTIVE_CONNECTION",
      "GET /healthcheck also fails (503) while the store is not reachable")
      ->group(rls);
  opt("--response-dynamic-metadata", s.response_dynamic_metadata, "RESPONSE_DYNAMIC_METADATA",
      "Answer with dynamic_metadata: the request's descriptors and the passed limits' metadata")
      ->group(rls);
  opt("--near-limit-ratio", s.near_limit_ratio, "NEAR_LIMIT_RATIO",
      "Share of a limit above which hits count as near_limit")
      ->check(CLI::Range(0.0, 1.0))
      ->group(rls);
  opt("--rls-over-limit-cache", s.rls_over_limit_cache, "RLS_OVER_LIMIT_CACHE_SIZE",
      "Counters remembered as over their limit until their window ends, answered without the "
      "store (0: off)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 30))
      ->group(rls);
  opt("--default-algorithm", s.default_algorithm, "DEFAULT_ALGORITHM",
      "Algorithm of a check that names none")
      ->group("Rules");
  opt("--default-window", s.default_window_s, "DEFAULT_WINDOW",
      "Window in seconds of a check that gives none")
      ->group("Rules");
  opt("--default-limit", s.default_limit, "DEFAULT_LIMIT",
      "Limit (or capacity) of a check that gives none")
      ->group("Rules");

  // Any case, and envoyproxy/ratelimit's (logrus') names too: WARN, warning, fatal, panic.
  opt("--log-level", s.log_level, "LOG_LEVEL", "trace, debug, info, warn, error or off")
      ->transform(CLI::Transformer(std::map<std::string, std::string>{{"trace", "trace"},
                                                                      {"debug", "debug"},
                                                                      {"info", "info"},
                                                                      {"warn", "warn"},
                                                                      {"warning", "warn"},
                                                                      {"error", "error"},
                                                                      {"fatal", "critical"},
                                                                      {"panic", "critical"},
                                                                      {"off", "off"}},
                                   CLI::ignore_case))
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->group("Operations");
  // Any case, kept in lower case: the code compares the canonical value.
  opt("--log-format", s.log_format, "LOG_FORMAT", "json or text")
      ->transform(CLI::IsMember({"json", "text"}, CLI::ignore_case))
      ->group("Operations");
  opt("--log-decisions", s.log_decisions, "LOG_DECISIONS",
      "A log line per decision: off, denied or all (HTTP checks and Envoy descriptors)")
      ->transform(CLI::IsMember({"off", "denied", "all"}, CLI::ignore_case))
      ->group("Operations");
  opt("--log-decisions-per-second", s.log_decisions_per_second, "LOG_DECISIONS_PER_SECOND",
      "Most decision lines a second; the rest are counted and reported once a second")
      ->check(CLI::Range(1, 1'000'000))
      ->group("Operations");
  opt("--admin-token", s.admin_token, "ADMIN_TOKEN",
      "Bearer token every admin request needs; unset: the admin API is read-only")
      ->group("Admin");
  opt("--admin-host", s.admin_host, "ADMIN_HOST",
      "Address the admin API (and dashboard) listens on")
      ->group("Admin");
  opt("--admin-port", s.admin_port, "ADMIN_PORT",
      "Port of the admin API (/admin/...) and the live dashboard (/) (0: any free port, -1: no "
      "admin listener)")
      ->check(CLI::Range(-1, 65535))
      ->group("Admin");
  opt("--admin-max-entries", s.admin_max_entries, "ADMIN_MAX_ENTRIES",
      "Most entries the allowlist, the blocklist and the limit overrides may each hold")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100'000'000}))
      ->group("Admin");
}

PolicyDefaults policy_defaults(const Settings& s) {
  PolicyDefaults defaults;
  defaults.algorithm = *parse_algorithm(s.default_algorithm);
  defaults.limit = s.default_limit;
  defaults.window = *window_from_seconds(s.default_window_s);
  return defaults;
}

std::optional<std::string> validate(const Settings& s) {
  if (s.backend != "memory" && s.backend != "redis" && s.backend != "redis-sentinel" &&
      s.backend != "redis-cluster") {
    return "BACKEND: must be memory, redis, redis-cluster or redis-sentinel, got '" + s.backend +
           "'";
  }
  if (s.backend != "memory") {
    auto options = redis_options(s);
    if (!options) return options.error().field + ": " + options.error().message;
    const bool sentinel = !options->sentinels.empty();
    const bool cluster = !options->cluster_seeds.empty();
    if (s.backend == "redis-sentinel" && !sentinel) {
      return "REDIS_URL: BACKEND=redis-sentinel needs "
             "redis+sentinel://host:port,host:port/master-name";
    }
    if (s.backend == "redis-cluster" && !cluster) {
      return "REDIS_URL: BACKEND=redis-cluster needs redis+cluster://host:port,host:port";
    }
    if (s.backend != "redis-sentinel" && sentinel) {
      return "BACKEND: a redis+sentinel:// REDIS_URL needs BACKEND=redis-sentinel";
    }
    if (s.backend != "redis-cluster" && cluster) {
      return "BACKEND: a redis+cluster:// REDIS_URL needs BACKEND=redis-cluster";
    }
    if (cluster && options->db != 0) {
      return "REDIS_DB: a Redis Cluster has database 0 only";
    }
  }
  if (s.grpc_tls) {
    struct File {
      const char* name;
      const std::string& path;
      bool required;
    };
    const File files[] = {{"GRPC_SERVER_TLS_CERT", s.grpc_tls_cert, true},
                          {"GRPC_SERVER_TLS_KEY", s.grpc_tls_key, true},
                          {"GRPC_CLIENT_TLS_CACERT", s.grpc_client_ca, false}};
    for (const auto& [name, path, required] : files) {
      if (path.empty()) {
        if (!required) continue;
        return std::string(name) + ": GRPC_SERVER_USE_TLS needs it (a PEM file)";
      }
      std::ifstream in(path);
      if (!in) return std::string(name) + ": cannot read " + path;
      const std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
      if (text.find("-----BEGIN ") == std::string::npos) {
        return std::string(name) + ": " + path + " holds no PEM block";
      }
    }
  }
  if (s.grpc_tls && !s.grpc_client_san.empty() && s.grpc_client_ca.empty()) {
    return "GRPC_CLIENT_TLS_SAN: needs GRPC_CLIENT_TLS_CACERT (client certificates are not asked "
           "for without it)";
  }
  const auto algorithm = parse_algorithm(s.default_algorithm);
  if (!algorithm) {
    return "DEFAULT_ALGORITHM: unknown algorithm '" + s.default_algorithm + "'";
  }
  auto window = window_from_seconds(s.default_window_s, "DEFAULT_WINDOW");
  if (!window) return window.error().field + ": " + window.error().message;
  if (s.default_limit < 1 || static_cast<std::uint64_t>(s.default_limit) > kMaxLimit) {
    return "DEFAULT_LIMIT: must be from 1 to 4294967295";
  }
  return std::nullopt;
}

namespace {

// go_bool(): a boolean as Go's strconv.ParseBool reads it (envoyproxy/ratelimit's envconfig).
std::optional<bool> go_bool(const std::string& text) {
  static constexpr std::array<std::string_view, 6> kTrue = {"1", "t", "T", "TRUE", "true", "True"};
  static constexpr std::array<std::string_view, 6> kFalse = {"0",     "f",     "F",
                                                             "FALSE", "false", "False"};
  if (std::find(kTrue.begin(), kTrue.end(), text) != kTrue.end()) return true;
  if (std::find(kFalse.begin(), kFalse.end(), text) != kFalse.end()) return false;
  return std::nullopt;
}

}  // namespace

Result<std::vector<std::string>> apply_file_settings(CLI::App& cmd,
                                                     const std::vector<rules::FileSetting>& file) {
  std::vector<std::string> applied;
  for (const rules::FileSetting& f : file) {
    const std::string field = "settings." + f.name;
    std::string flag = boost::algorithm::to_lower_copy(f.name);
    std::replace(flag.begin(), flag.end(), '_', '-');
    CLI::Option* option = nullptr;
    for (CLI::Option* o : cmd.get_options()) {
      const auto& names = o->get_lnames();
      if (std::find(names.begin(), names.end(), flag) != names.end() ||
          (!o->get_envname().empty() && boost::algorithm::iequals(o->get_envname(), f.name))) {
        option = o;
        break;
      }
    }
    if (option == nullptr || option->get_lnames().empty() ||
        option->get_lnames().front() == "help") {
      return ParamError{
          field, f.where + ": " + field + ": is not a setting (floodgate serve --help lists them)"};
    }
    if (option->get_lnames().front() == "config") {
      return ParamError{
          field, f.where + ": " + field + ": the rules file is named by --config or CONFIG_FILE"};
    }
    if (option->count() > 0) continue;  // a flag or the environment gave it
    try {
      option->add_result(f.value);
      option->run_callback();
    } catch (const CLI::ParseError& e) {
      return ParamError{field, f.where + ": " + field + ": " + e.what()};
    }
    applied.push_back("--" + option->get_lnames().front());
  }
  return applied;
}

Result<std::vector<std::string>> apply_envoy_ratelimit_env(
    const CLI::App& cmd, Settings& s, const GetEnv& env,
    const std::vector<std::string>& from_file) {
  std::vector<std::string> notes;
  auto given = [&](const char* flag) {
    return cmd.get_option(flag)->count() > 0 &&
           std::find(from_file.begin(), from_file.end(), flag) == from_file.end();
  };

  if (auto type = env("CONFIG_TYPE"); type && !boost::algorithm::iequals(*type, "file")) {
    return ParamError{"CONFIG_TYPE",
                      "floodgate reads its limits from files (FILE: RLS_CONFIG or RUNTIME_ROOT), "
                      "not from an xDS server; got '" +
                          *type + "'"};
  }
  const auto root = env("RUNTIME_ROOT");
  const auto subdirectory = env("RUNTIME_SUBDIRECTORY");
  if ((root || subdirectory) && !given("--rls-config")) {
    std::filesystem::path dir = root.value_or("/srv/runtime_data/current");
    if (subdirectory) dir /= *subdirectory;
    dir /= env("RUNTIME_APPDIRECTORY").value_or("config");
    s.rls_config = dir.lexically_normal().string();
    notes.push_back("RLS_CONFIG=" + s.rls_config +
                    " (envoyproxy/ratelimit's RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/"
                    "RUNTIME_APPDIRECTORY)");
  }

  if (auto backend = env("BACKEND_TYPE");
      backend && !boost::algorithm::iequals(*backend, "redis")) {
    return ParamError{"BACKEND_TYPE", "floodgate has no '" + *backend +
                                          "' backend: it counts in Redis (REDIS_URL) or in "
                                          "memory (BACKEND=memory)"};
  }
  // envoyproxy/ratelimit's REDIS_URL has no scheme; floodgate's always has one.
  if (!s.redis_url.empty() && s.redis_url.find("://") == std::string::npos) {
    // Its default is unix; unset, a path says unix and anything else tcp.
    const std::string socket = boost::algorithm::to_lower_copy(
        env("REDIS_SOCKET_TYPE").value_or(s.redis_url.starts_with("/") ? "unix" : "tcp"));
    if (socket != "tcp" && socket != "unix") {
      return ParamError{"REDIS_SOCKET_TYPE", "must be tcp or unix, got '" + socket + "'"};
    }
    const std::string type = boost::algorithm::to_lower_copy(env("REDIS_TYPE").value_or("single"));
    bool tls = false;
    if (auto text = env("REDIS_TLS")) {
      const auto parsed = go_bool(*text);
      if (!parsed) return ParamError{"REDIS_TLS", "must be true or false, got '" + *text + "'"};
      tls = *parsed;
    }
    if (tls && type != "single") {
      return ParamError{"REDIS_TLS",
                        "floodgate speaks TLS to a single Redis only (REDIS_TYPE=single)"};
    }
    std::string url;
    std::string backend;
    if (socket == "unix") {
      if (type != "single" || tls) {
        return ParamError{"REDIS_SOCKET_TYPE",
                          "a Unix socket reaches a single Redis without TLS (REDIS_TYPE=single)"};
      }
      url = "unix://" + s.redis_url;
      backend = "redis";
    } else if (type == "single") {
      url = (tls ? "rediss://" : "redis://") + s.redis_url;
      backend = "redis";
    } else if (type == "cluster") {
      url = "redis+cluster://" + s.redis_url;
      backend = "redis-cluster";
    } else if (type == "sentinel") {
      const auto comma = s.redis_url.find(',');
      if (comma == std::string::npos || comma == 0 || comma + 1 == s.redis_url.size()) {
        return ParamError{"REDIS_URL",
                          "REDIS_TYPE=sentinel needs the master's name and the sentinels: "
                          "<master name>,<host:port>,...; got '" +
                              s.redis_url + "'"};
      }
      url =
          "redis+sentinel://" + s.redis_url.substr(comma + 1) + "/" + s.redis_url.substr(0, comma);
      backend = "redis-sentinel";
    } else {
      return ParamError{"REDIS_TYPE", "must be single, cluster or sentinel, got '" + type + "'"};
    }
    s.redis_url = url;
    if (!given("--backend")) s.backend = backend;
    notes.push_back("REDIS_URL=" + url + " BACKEND=" + s.backend +
                    " (envoyproxy/ratelimit's REDIS_TYPE and REDIS_URL)");
  }
  if (auto auth = env("REDIS_AUTH"); auth && !auth->empty() && !given("--redis-password")) {
    // As envoyproxy/ratelimit: "user:password" names an ACL user, anything else is a password.
    const auto colon = auth->find(':');
    if (colon != std::string::npos) {
      s.redis_username = auth->substr(0, colon);
      s.redis_password = auth->substr(colon + 1);
    } else {
      s.redis_password = *auth;
    }
  }
  if (auto auth = env("REDIS_SENTINEL_AUTH");
      auth && !auth->empty() && !given("--redis-sentinel-password")) {
    s.redis_sentinel_password = *auth;
  }

  // Its settings that change nothing here, said once rather than silently dropped.
  struct Unused {
    const char* name;
    const char* why;
  };
  static constexpr std::array<Unused, 12> kUnused = {{
      {"USE_STATSD", "metrics are Prometheus' at GET /metrics"},
      {"STATSD_HOST", "metrics are Prometheus' at GET /metrics"},
      {"USE_PROMETHEUS", "GET /metrics is always there"},
      {"PROMETHEUS_ADDR", "GET /metrics is served on PORT"},
      {"DEBUG_PORT", "the admin API (GET /rlconfig too) is on ADMIN_PORT"},
      {"REDIS_PIPELINE_WINDOW", "checks in flight together go out together, without waiting"},
      {"REDIS_PIPELINE_LIMIT", "checks in flight together go out together, without waiting"},
      {"REDIS_PERSECOND", "per-second limits count in the one store"},
      {"REDIS_TIMEOUT", "STORE_TIMEOUT_MS bounds a decision (10 ms by default)"},
      {"LOCAL_CACHE_SIZE_IN_BYTES", "RLS_OVER_LIMIT_CACHE_SIZE counts entries (65,536)"},
      {"STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT", "a refused hit never counts"},
      {"EXPIRATION_JITTER_MAX_SECONDS", "keys expire when their window ends"},
  }};
  for (const Unused& u : kUnused) {
    if (env(u.name)) notes.push_back(std::string(u.name) + " has no effect: " + u.why);
  }
  return notes;
}

Result<RedisOptions> redis_options(const Settings& s) {
  RedisOptions o;
  if (!s.redis_url.empty()) {
    auto parsed = parse_redis_url(s.redis_url);
    if (!parsed) return parsed.error();
    o = std::move(*parsed);
  } else {
    const std::string addr = s.redis_addr.empty() ? "localhost:6379" : s.redis_addr;
    const auto colon = addr.rfind(':');
    std::string host = colon == std::string::npos ? addr : addr.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);  // [::1]:6379
    }
    int port = 6379;
    if (colon != std::string::npos) {
      const std::string digits = addr.substr(colon + 1);
      try {
        std::size_t used = 0;
        port = std::stoi(digits, &used);
        if (used != digits.size()) port = -1;
      } catch (const std::exception&) {
        port = -1;
      }
    }
    if (host.empty() || port < 1 || port > 65535) {
      return ParamError{"REDIS_ADDR", "must be host:port, got '" + addr + "'"};
    }
    o.host = host;
    o.port = static_cast<std::uint16_t>(port);
  }
  if (o.password.empty()) {
    o.password = s.redis_password;
    if (o.username.empty()) o.username = s.redis_username;
  }
  o.sentinel_password = s.redis_sentinel_password;
  if (o.db == 0) o.db = s.redis_db;
  o.pool_size = s.redis_pool_size;
  o.timeout = std::chrono::milliseconds(s.store_timeout_ms);
  o.connect_timeout = std::chrono::milliseconds(s.store_connect_timeout_ms);
  o.breaker_failures = s.breaker_failures;
  o.breaker_cooldown = std::chrono::milliseconds(s.breaker_cooldown_ms);
  o.tls_ca_file = s.redis_tls_ca_file;
  o.tls_verify = !s.redis_tls_insecure;
  return o;
}

}  // namespace floodgate::app
