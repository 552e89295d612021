// File: app/settings.h
//
// Settings: every knob of `floodgate serve`, in one table with its default, its flag and its
// environment variable: flags > environment > the rules file's `settings` section > defaults.
// `floodgate serve --help` prints this table.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "floodgate/policy.h"
#include "floodgate/policy_spec.h"
#include "floodgate/redis_store.h"
#include "rules/loader.h"

namespace CLI {
class App;
}  // namespace CLI

namespace floodgate::app {

struct Settings {
  // HTTP
  std::string host = "0.0.0.0";
  int port = 8080;
  int grpc_port = 8081;
  int threads = 0;  // 0: one per core
  int request_timeout_ms = 10'000;
  int idle_timeout_ms = 60'000;
  // Store
  std::string backend = "memory";
  std::string redis_url;
  std::string redis_addr;
  std::string redis_password;
  std::string redis_username;  // no flag: REDIS_AUTH's "user:password" (envoyproxy/ratelimit)
  std::string redis_sentinel_password;
  int redis_db = 0;
  int redis_pool_size = 2;
  std::string redis_tls_ca_file;
  bool redis_tls_insecure = false;
  int store_timeout_ms = 10;
  int store_connect_timeout_ms = 1000;
  int breaker_failures = 5;
  int breaker_cooldown_ms = 250;
  std::string failure_mode = "fail_open";
  std::int64_t max_keys = 1'000'000;
  // Rules
  std::string config_file;
  // Envoy rate limit service (gRPC on grpc_port; -1 turns it off). The upper-case names are
  // envoyproxy/ratelimit's own settings, taken as it takes them.
  std::string rls_config;
  std::string grpc_host;  // empty: the HTTP host
  std::string grpc_uds;   // GRPC_UDS: a Unix socket instead of grpc_host:grpc_port
  int grpc_threads = 0;   // 0: half the cores, at least one
  int grpc_max_message_bytes = 1 << 20;
  bool grpc_tls = false;  // GRPC_SERVER_USE_TLS
  std::string grpc_tls_cert;
  std::string grpc_tls_key;
  std::string grpc_client_ca;   // mTLS
  std::string grpc_client_san;  // mTLS: the client certificate's SAN
  bool merge_domain_config = false;
  bool limit_response_headers = false;
  std::string limit_limit_header = "RateLimit-Limit";
  std::string limit_remaining_header = "RateLimit-Remaining";
  std::string limit_reset_header = "RateLimit-Reset";
  bool rls_draft_headers = false;
  bool shadow_mode = false;
  bool quota_mode = false;
  bool response_dynamic_metadata = false;
  bool redis_health_check_active_connection = false;
  double near_limit_ratio = 0.8;
  std::int64_t rls_over_limit_cache = 65536;
  std::string default_algorithm = "token_bucket";
  double default_window_s = 3600;
  std::int64_t default_limit = 1000;
  // Operations
  std::string log_level = "info";
  std::string log_format = "json";
  std::string log_decisions = "off";  // off, denied or all
  int log_decisions_per_second = 100;
  std::string admin_token;
  std::string admin_host = "127.0.0.1";
  int admin_port = 8082;  // 0: any free port; -1: no admin listener
  std::int64_t admin_max_entries = 1'000'000;
  // What the rules file's `settings` section held at the start (applied or overridden), so a
  // reload can tell that it changed: settings take effect at a start.
  std::vector<rules::FileSetting> file_settings;
};

// add_settings(): registers every setting as a flag with its environment variable on `command`.
void add_settings(CLI::App& command, Settings& settings);

// policy_defaults(): DEFAULT_ALGORITHM, DEFAULT_LIMIT and DEFAULT_WINDOW, once validate() passed.
PolicyDefaults policy_defaults(const Settings& settings);

// validate(): the first setting that is out of range, as "NAME: what is wrong", or nullopt.
std::optional<std::string> validate(const Settings& settings);

// apply_envoy_ratelimit_env(): envoyproxy/ratelimit's own environment, so that its Deployment
// runs floodgate unchanged (docs/CONFIG.md, "Coming from envoyproxy/ratelimit"), applied where
// floodgate's own setting was not given on `command` (flag or environment):
//   RUNTIME_ROOT/RUNTIME_SUBDIRECTORY/RUNTIME_APPDIRECTORY  -> RLS_CONFIG (that directory)
//   REDIS_URL without a scheme, as REDIS_TYPE reads it: host:port (single), host:port,...
//   (cluster), master,host:port,... (sentinel), a path with REDIS_SOCKET_TYPE=unix  -> REDIS_URL
//   and BACKEND; REDIS_TLS -> rediss://
//   REDIS_AUTH ("password" or "user:password")  -> the Redis password (and ACL user)
//   REDIS_SENTINEL_AUTH  -> REDIS_SENTINEL_PASSWORD
// What floodgate cannot honour (BACKEND_TYPE other than redis, CONFIG_TYPE other than FILE, TLS
// or a Unix socket with a cluster or Sentinel) is an error naming the variable; the notes say what
// was taken and which of its settings have no effect here. `env` reads a variable (nullopt when
// unset).
using GetEnv = std::function<std::optional<std::string>(const char* name)>;
// `from_file`: flags that apply_file_settings() set, which these translations override.
Result<std::vector<std::string>> apply_envoy_ratelimit_env(
    const CLI::App& command, Settings& settings, const GetEnv& env,
    const std::vector<std::string>& from_file = {});

// apply_file_settings(): the rules file's `settings` section (CONFIG_FILE) for every setting that
// neither a flag nor the environment gave, converted and range-checked as its flag is. A setting
// is named by its flag without the leading dashes, '_' or '-' between words (`store_timeout_ms`),
// or by its environment variable in any case (`STORE_TIMEOUT_MS`). Returns the flags it set (for
// apply_envoy_ratelimit_env(), whose translations come before the file), or the first error as
// {"settings.NAME", "file:line:column: settings.NAME: what is wrong"}. CONFIG_FILE itself cannot
// be set there.
Result<std::vector<std::string>> apply_file_settings(CLI::App& command,
                                                     const std::vector<rules::FileSetting>& file);

// redis_options(): the Redis connection the settings describe: REDIS_URL, else REDIS_ADDR
// (default localhost:6379); REDIS_PASSWORD and REDIS_DB fill in what the URL leaves out.
Result<RedisOptions> redis_options(const Settings& settings);

}  // namespace floodgate::app
