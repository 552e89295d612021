// floodgate: the command-line entry point and the composition root. `serve` wires the store,
// the limiter, the metrics and the HTTP server together; `check` runs in-process decisions.
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <unistd.h>

#include "admin/admin_api.h"
#include "admin/overrides.h"
#include "admin/redis_fleet.h"
#include "admin/stats.h"
#include "app/settings.h"
#include "floodgate/limiter.h"
#include "floodgate/memory_store.h"
#include "floodgate/policy.h"
#include "floodgate/redis_store.h"
#include "floodgate/version.h"
#include "observe/metrics.h"
#include "rls/config.h"
#include "rls/service.h"
#include "rules/loader.h"
#include "rules/rule_set.h"
#include "server/grpc/rls_server.h"
#include "server/http/api.h"
#include "server/http/server.h"

namespace {

struct CheckArgs {
  std::string key = "demo";
  std::string algorithm = "token_bucket";
  std::int64_t limit = 10;
  double rate = 1;
  double window_s = 60;
  std::int64_t cost = 1;
  int repeat = 1;
};

floodgate::Result<floodgate::Policy> make_policy(const CheckArgs& a) {
  using floodgate::Algorithm;
  using floodgate::Policy;
  const auto window_or = floodgate::window_from_seconds(a.window_s);
  if (!window_or) return window_or.error();
  const floodgate::Micros window = *window_or;
  const auto algorithm = floodgate::parse_algorithm(a.algorithm);
  if (!algorithm)
    return floodgate::ParamError{"algorithm", "unknown algorithm '" + a.algorithm + "'"};
  switch (*algorithm) {
    case Algorithm::kTokenBucket:
      return Policy::token_bucket(a.limit, a.rate);
    case Algorithm::kGcra:
      return Policy::gcra(a.limit, window);
    case Algorithm::kLeakyBucket:
      return Policy::leaky_bucket(a.limit, a.rate);
    case Algorithm::kFixedWindow:
      return Policy::fixed_window(a.limit, window);
    case Algorithm::kSlidingWindowLog:
      return Policy::sliding_window_log(a.limit, window);
    case Algorithm::kSlidingWindowCounter:
      return Policy::sliding_window_counter(a.limit, window);
  }
  return floodgate::ParamError{"algorithm", "unknown algorithm"};
}

std::string ms(floodgate::Micros d) {
  if (d == floodgate::kNever) return "never";
  return std::to_string((d.count() + 999) / 1000) + "ms";
}

int run_check(const CheckArgs& args) {
  auto policy = make_policy(args);
  if (!policy) {
    fmt::print(stderr, "floodgate: {}: {}\n", policy.error().field, policy.error().message);
    return 2;
  }
  floodgate::SystemClock clock;
  floodgate::MemoryStore store(clock);
  floodgate::Limiter limiter(store);
  for (int i = 0; i < args.repeat; ++i) {
    const floodgate::Decision d =
        limiter.check(args.key, *policy, static_cast<std::uint64_t>(args.cost)).decision;
    fmt::print("{} allowed={} limit={} remaining={} reset_after={} retry_after={}{}\n", i + 1,
               d.allowed, d.limit, d.remaining, ms(d.reset_after), ms(d.retry_after),
               d.allowed ? "" : fmt::format(" reason={}", floodgate::to_string(d.reason)));
  }
  return 0;
}

// log_safe(): a message that may hold user text (file contents, paths), escaped for the JSON log.
std::string log_safe(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// log_line(): a store's or the fleet's message ("warn" or "info") into the log.
void log_line(std::string_view level, std::string_view message) {
  if (level == "warn") {
    spdlog::warn("{}", log_safe(message));
  } else {
    spdlog::info("{}", log_safe(message));
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The files `floodgate validate PATH` covers: PATH itself, or the YAML files of a directory and
// its subdirectories (names starting with '.' skipped), as the RLS config loader reads them.
std::vector<std::string> files_of(const std::string& path) {
  std::error_code ec;
  return floodgate::rls::config_files(path, ec);
}

// The envoyproxy/ratelimit configs found under one PATH, loaded together as the service would
// load them (so a domain given twice is refused).
int validate_envoy_configs(const std::string& root,
                           const std::vector<floodgate::rls::ConfigText>& files,
                           bool merge_domains) {
  floodgate::rls::LoadOptions options;
  options.merge_domains = merge_domains;
  auto loaded = floodgate::rls::load_config_texts(files, options);
  if (auto* errors = std::get_if<floodgate::rls::LoadErrors>(&loaded)) {
    for (const auto& message : errors->messages) fmt::print(stderr, "{}\n", message);
    return 1;
  }
  const auto& config = std::get<floodgate::rls::Config>(loaded);
  for (const auto& warning : config.warnings) fmt::print(stderr, "warning: {}\n", warning);
  fmt::print("{}: ok, envoyproxy/ratelimit config: {} domain(s), {} limit(s) in {} file(s)\n{}",
             root, config.domains.size(), config.limit_count(), files.size(),
             floodgate::rls::describe(config));
  return 0;
}

int run_validate(const std::vector<std::string>& paths, bool merge_domains) {
  int status = 0;
  for (const std::string& root : paths) {
    const auto files = files_of(root);
    if (files.empty()) {
      fmt::print(stderr, "{}: no .yaml or .yml files\n", root);
      status = 1;
    }
    std::vector<floodgate::rls::ConfigText> envoy_configs;
    for (const std::string& file : files) {
      std::error_code ec;
      if (!std::filesystem::exists(file, ec)) {
        fmt::print(stderr, "{}: no such file\n", file);
        status = 1;
        continue;
      }
      std::string text = read_file(file);
      if (floodgate::rules::is_envoy_config(text)) {
        envoy_configs.push_back({file, std::move(text)});
        continue;
      }
      // Its `settings` are checked as `serve` would take them (no flags, no environment), and
      // the rules read with the defaults they give.
      auto file_settings = floodgate::rules::load_settings_text(text, file);
      if (auto* errors = std::get_if<floodgate::rules::LoadErrors>(&file_settings)) {
        for (const auto& message : errors->messages) fmt::print(stderr, "{}\n", message);
        status = 1;
        continue;
      }
      floodgate::app::Settings settings;
      CLI::App scratch;
      floodgate::app::add_settings(scratch, settings);
      auto applied = floodgate::app::apply_file_settings(
          scratch, std::get<std::vector<floodgate::rules::FileSetting>>(file_settings));
      std::optional<std::string> invalid;
      if (!applied) {
        invalid = applied.error().message;
      } else if (auto problem = floodgate::app::validate(settings)) {
        invalid = file + ": settings: " + *problem;
      }
      if (invalid) {
        fmt::print(stderr, "{}\n", *invalid);
        status = 1;
        continue;
      }
      auto loaded =
          floodgate::rules::load_rules_text(text, file, floodgate::app::policy_defaults(settings));
      if (auto* errors = std::get_if<floodgate::rules::LoadErrors>(&loaded)) {
        for (const auto& message : errors->messages) fmt::print(stderr, "{}\n", message);
        status = 1;
        continue;
      }
      const auto& set = std::get<floodgate::rules::RuleSet>(loaded);
      fmt::print("{}: ok, {} rule(s)\n{}", file, set.rules.size(), floodgate::rules::describe(set));
    }
    if (!envoy_configs.empty() && validate_envoy_configs(root, envoy_configs, merge_domains) != 0) {
      status = 1;
    }
  }
  return status;
}

void setup_logging(const floodgate::app::Settings& s) {
  auto logger = spdlog::stdout_logger_mt("floodgate");
  if (s.log_format == "json") {
    // One JSON object per line. Messages are ours and never hold a double quote.
    logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(s.log_level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

int run_serve(const floodgate::app::Settings& s, const std::vector<std::string>& notes) {
  if (auto problem = floodgate::app::validate(s)) {
    fmt::print(stderr, "floodgate: {}\n", *problem);
    return 2;
  }
  setup_logging(s);
  for (const std::string& note : notes) spdlog::info("settings: {}", log_safe(note));

  const floodgate::PolicyDefaults defaults = floodgate::app::policy_defaults(s);
  floodgate::http::ApiError error;
  if (!floodgate::http::policy_for({}, defaults, error)) {
    fmt::print(stderr, "floodgate: the default policy is invalid: {} {}\n", error.field,
               error.message);
    return 2;
  }

  floodgate::observe::Metrics metrics(floodgate::kVersion);

  // Rules: loaded now (a bad file stops the start), reloaded on SIGHUP and when the file changes.
  floodgate::rules::RuleStore rule_store;
  auto load = [&](std::string_view why) -> bool {
    auto loaded = floodgate::rules::load_rules(s.config_file, defaults);
    if (auto* errors = std::get_if<floodgate::rules::LoadErrors>(&loaded)) {
      for (const auto& message : errors->messages) {
        if (why == "loaded") {
          spdlog::error("rules file refused: {}", log_safe(message));
        } else {
          spdlog::error("rules {} refused, the last good rules stay: {}", why, log_safe(message));
        }
      }
      return false;
    }
    auto& fresh = std::get<floodgate::rules::RuleSet>(loaded);
    for (auto& [name, rule] : fresh.rules) rule.metrics_slot = metrics.rule_slot(name);
    auto set = std::make_shared<const floodgate::rules::RuleSet>(std::move(fresh));
    spdlog::info("rules {}: {} rule(s) from {}", why, set->rules.size(), log_safe(s.config_file));
    rule_store.replace(std::move(set));
    if (why != "loaded") {
      auto now = floodgate::rules::load_settings(s.config_file);
      auto* entries = std::get_if<std::vector<floodgate::rules::FileSetting>>(&now);
      auto same = [](const floodgate::rules::FileSetting& a,
                     const floodgate::rules::FileSetting& b) {
        return a.name == b.name && a.value == b.value;
      };
      if (entries && !std::equal(entries->begin(), entries->end(), s.file_settings.begin(),
                                 s.file_settings.end(), same)) {
        spdlog::warn(
            "rules {}: its settings section changed; settings take effect at the next "
            "start, the rules now",
            why);
      }
    }
    return true;
  };
  if (!s.config_file.empty() && !load("loaded")) {
    fmt::print(stderr, "floodgate: CONFIG_FILE: {} has errors (see the log)\n", s.config_file);
    return 2;
  }

  // Envoy rate limit service configs: the same life as the rules (a bad config stops the start; a
  // bad reload keeps the last good one).
  floodgate::rls::LoadOptions rls_load_options;
  rls_load_options.merge_domains = s.merge_domain_config;
  std::shared_ptr<const floodgate::rls::Config> rls_config =
      std::make_shared<floodgate::rls::Config>();
  auto load_rls = [&](std::string_view why) -> std::shared_ptr<const floodgate::rls::Config> {
    auto loaded = floodgate::rls::load_config(s.rls_config, rls_load_options);
    if (auto* errors = std::get_if<floodgate::rls::LoadErrors>(&loaded)) {
      for (const auto& message : errors->messages) {
        if (why == "loaded") {
          spdlog::error("RLS config refused: {}", log_safe(message));
        } else {
          spdlog::error("RLS config {} refused, the last good config stays: {}", why,
                        log_safe(message));
        }
      }
      return nullptr;
    }
    auto config = std::make_shared<const floodgate::rls::Config>(
        std::move(std::get<floodgate::rls::Config>(loaded)));
    for (const auto& warning : config->warnings) spdlog::warn("RLS config: {}", log_safe(warning));
    spdlog::info("RLS config {}: {} domain(s), {} limit(s) from {}", why, config->domains.size(),
                 config->limit_count(), log_safe(s.rls_config));
    return config;
  };
  if (!s.rls_config.empty()) {
    rls_config = load_rls("loaded");
    if (!rls_config) {
      fmt::print(stderr, "floodgate: RLS_CONFIG: {} has errors (see the log)\n", s.rls_config);
      return 2;
    }
  }

  floodgate::SystemClock clock;
  // The memory store is the store (BACKEND=memory) or the local fallback (FAILURE_MODE=local).
  floodgate::MemoryStore store(clock,
                               {.max_keys = static_cast<std::size_t>(s.max_keys), .shards = 64});
  std::unique_ptr<floodgate::RedisStore> redis;
  if (s.backend != "memory") {
    auto redis_options = *floodgate::app::redis_options(s);  // validated above
    redis_options.log = log_line;
    std::string where = fmt::format("{}:{}", redis_options.host, redis_options.port);
    if (!redis_options.sentinels.empty()) {
      where = fmt::format("master '{}' through {} sentinel(s)", redis_options.sentinel_master,
                          redis_options.sentinels.size());
    } else if (!redis_options.cluster_seeds.empty()) {
      where = fmt::format("cluster through {} seed node(s)", redis_options.cluster_seeds.size());
    } else if (!redis_options.unix_socket.empty()) {
      where = "unix:" + redis_options.unix_socket;
    }
    spdlog::info("store: redis at {} db={} tls={} pool={} timeout={}ms", log_safe(where),
                 redis_options.db, redis_options.tls, redis_options.pool_size,
                 redis_options.timeout.count());
    const auto connect_timeout = redis_options.connect_timeout;
    redis = std::make_unique<floodgate::RedisStore>(std::move(redis_options));
    // Serve once the store has connected, or has failed to (FAILURE_MODE then answers until it
    // does): the first requests after a start are Redis' decisions, not the failure mode's.
    const auto waited_from = std::chrono::steady_clock::now();
    const floodgate::StoreHealth health = redis->wait_started(2 * connect_timeout);
    if (!health.ready) {
      spdlog::warn(
          "store: redis not ready after {} ms ({}{}{}); answering by FAILURE_MODE={} "
          "until it is",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                waited_from)
              .count(),
          health.state, health.error.empty() ? "" : ": ", log_safe(health.error), s.failure_mode);
    }
  }
  floodgate::Store& shared = redis ? static_cast<floodgate::Store&>(*redis) : store;
  floodgate::Limiter limiter(shared, &store);
  const floodgate::FailureMode failure_mode = *floodgate::parse_failure_mode(s.failure_mode);

  // The allowlist and blocklist (the admin API changes them), asked before every decision.
  floodgate::admin::AccessLists access_lists(clock, static_cast<std::size_t>(s.admin_max_entries));
  // Runtime overrides of keys' limits (the admin API changes them), asked before every decision.
  floodgate::admin::Overrides overrides(clock, static_cast<std::size_t>(s.admin_max_entries),
                                        defaults);
  // Recent figures for GET /admin/stats and the dashboard.
  floodgate::admin::CoarseClock coarse_clock;
  floodgate::admin::Stats admin_stats(coarse_clock);
  floodgate::rls::ServiceOptions rls_options;
  // LOG_DECISIONS: one line per decision (denied or all), at most LOG_DECISIONS_PER_SECOND.
  const auto decision_mode = floodgate::observe::DecisionLog::parse_mode(s.log_decisions)
                                 .value_or(floodgate::observe::DecisionLog::Mode::kOff);
  floodgate::observe::DecisionLog decision_log(
      {.mode = decision_mode,
       .per_second = s.log_decisions_per_second,
       // The line quotes and escapes the key itself; the JSON log escapes it once more.
       .write =
           [json = s.log_format == "json"](std::string_view line) {
             if (json) {
               spdlog::info("{}", log_safe(line));
             } else {
               spdlog::info("{}", line);
             }
           },
       .clock = nullptr});
  floodgate::observe::DecisionLog* decisions =
      decision_mode == floodgate::observe::DecisionLog::Mode::kOff ? nullptr : &decision_log;
  rls_options.lists = &access_lists;
  rls_options.admin_stats = &admin_stats;
  rls_options.decision_log = decisions;
  rls_options.response_headers = s.limit_response_headers;
  rls_options.limit_header = s.limit_limit_header;
  rls_options.remaining_header = s.limit_remaining_header;
  rls_options.reset_header = s.limit_reset_header;
  rls_options.draft_headers = s.rls_draft_headers;
  rls_options.global_shadow_mode = s.shadow_mode;
  rls_options.global_quota_mode = s.quota_mode;
  rls_options.response_dynamic_metadata = s.response_dynamic_metadata;
  rls_options.near_limit_ratio = s.near_limit_ratio;
  rls_options.over_limit_cache_entries = static_cast<std::size_t>(s.rls_over_limit_cache);
  rls_options.failure_mode = failure_mode;
  floodgate::rls::Service rls_service(limiter, rls_options, rls_config);
  floodgate::grpc::RlsJson rls_json(rls_service);

  floodgate::http::Api api(
      limiter, store, metrics,
      {.defaults = defaults,
       .failure_mode = failure_mode,
       .rules = &rule_store,
       .api_key_header = "X-API-Key",
       .json_route = &rls_json,
       .lists = &access_lists,
       .overrides = &overrides,
       .stats = &admin_stats,
       .extra_metrics = [&rls_service](std::string& out) { rls_service.append_metrics(out); },
       .healthcheck_needs_store = s.redis_health_check_active_connection,
       .decision_log = decisions});

  floodgate::http::ServerOptions options;
  options.host = s.host;
  options.port = static_cast<std::uint16_t>(s.port);
  options.request_timeout = std::chrono::milliseconds(s.request_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(s.idle_timeout_ms);
  options.threads = s.threads > 0
                        ? s.threads
                        : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (redis) {
    // Each worker talks to Redis over its own connection, on its own loop: no thread hand-offs.
    options.on_worker_start = [&redis](boost::asio::io_context& io) { redis->adopt(io); };
    options.on_worker_stop = [&redis](boost::asio::io_context& io) { redis->release(io); };
  }
  std::unique_ptr<floodgate::http::HttpServer> server;
  try {
    server = std::make_unique<floodgate::http::HttpServer>(options, api);
  } catch (const std::exception& e) {
    spdlog::error("cannot listen on {}:{}: {}", s.host, s.port, e.what());
    return 1;
  }
  spdlog::info("listening on {}:{} store={} threads={} version={}", s.host, server->bound_port(),
               shared.name(), options.threads, floodgate::kVersion);

  // The admin API on its own listener (loopback by default), one thread: it is not a hot path.
  char host_name[256] = {};
  ::gethostname(host_name, sizeof host_name - 1);
  const std::string instance_id = fmt::format("{}:{}", host_name, ::getpid());
  floodgate::admin::AdminApi admin_api(
      {.lists = &access_lists,
       .overrides = &overrides,
       .stats = &admin_stats,
       .metrics = &metrics,
       .store = &shared,
       .local = &store,
       .rules = &rule_store,
       .fleet = nullptr,
       .rlconfig = [&rls_service] { return floodgate::rls::dump(*rls_service.config()); }},
      {.token = s.admin_token,
       .audit = [](std::string_view line) { spdlog::info("audit {}", log_safe(line)); },
       .count_status = nullptr,
       .instance_id = instance_id,
       .version = floodgate::kVersion});
  // With Redis, the lists and overrides are the fleet's: kept in Redis, applied by every instance.
  std::unique_ptr<floodgate::admin::RedisFleet> fleet;
  if (redis) {
    fleet = std::make_unique<floodgate::admin::RedisFleet>(
        *redis, access_lists, overrides,
        floodgate::admin::RedisFleet::Options{.instance_id = instance_id,
                                              .db = floodgate::app::redis_options(s)->db,
                                              .report = [&admin_api] { return admin_api.report(); },
                                              .log = log_line});
    admin_api.set_fleet(fleet.get());
  }
  std::unique_ptr<floodgate::http::HttpServer> admin_server;
  std::thread admin_thread;
  if (s.admin_port >= 0) {
    floodgate::http::ServerOptions admin_options;
    admin_options.host = s.admin_host;
    admin_options.port = static_cast<std::uint16_t>(s.admin_port);
    admin_options.threads = 1;
    admin_options.request_timeout = options.request_timeout;
    admin_options.idle_timeout = options.idle_timeout;
    try {
      admin_server = std::make_unique<floodgate::http::HttpServer>(admin_options, admin_api);
    } catch (const std::exception& e) {
      spdlog::error("cannot listen on {}:{} (admin): {}", s.admin_host, s.admin_port, e.what());
      server->stop();
      server->run();
      fleet.reset();
      redis.reset();
      return 1;
    }
    spdlog::info("admin API listening on {}:{} ({})", s.admin_host, admin_server->bound_port(),
                 s.admin_token.empty() ? "read-only: ADMIN_TOKEN is not set"
                                       : "changes need the bearer token");
    admin_thread = std::thread([&] { admin_server->run(); });
  }

  std::unique_ptr<floodgate::grpc::RlsServer> grpc_server;
  std::optional<floodgate::grpc::RlsTls> grpc_tls;
  if (s.grpc_tls) {
    grpc_tls = floodgate::grpc::RlsTls{.cert_file = s.grpc_tls_cert,
                                       .key_file = s.grpc_tls_key,
                                       .client_ca_file = s.grpc_client_ca,
                                       .client_san = s.grpc_client_san};
  } else if (!s.grpc_tls_cert.empty() || !s.grpc_client_ca.empty()) {
    spdlog::warn(
        "settings: GRPC_SERVER_TLS_CERT or GRPC_CLIENT_TLS_CACERT is set but "
        "GRPC_SERVER_USE_TLS is not: the gRPC port speaks plaintext");
  }
  if (s.grpc_port >= 0 || !s.grpc_uds.empty()) {
    const std::string grpc_host = s.grpc_host.empty() ? s.host : s.grpc_host;
    // Where it listens, for the log: GRPC_UDS (envoyproxy/ratelimit's) replaces host:port.
    const std::string where =
        s.grpc_uds.empty() ? fmt::format("{}:{}", grpc_host, s.grpc_port) : "unix:" + s.grpc_uds;
    try {
      grpc_server = std::make_unique<floodgate::grpc::RlsServer>(
          rls_service,
          floodgate::grpc::RlsServerOptions{
              .host = grpc_host,
              .port = static_cast<std::uint16_t>(std::max(s.grpc_port, 0)),
              .unix_socket = s.grpc_uds,
              .max_message_bytes = s.grpc_max_message_bytes,
              .threads = s.grpc_threads > 0 ? s.grpc_threads
                                            : static_cast<int>(std::max(
                                                  1u, std::thread::hardware_concurrency() / 2)),
              .tls = grpc_tls});
    } catch (const std::exception& e) {
      spdlog::error("cannot listen on {} (gRPC): {}", log_safe(where), e.what());
      if (admin_server) {
        admin_server->stop();
        admin_thread.join();
      }
      server->stop();
      server->run();
      fleet.reset();
      redis.reset();
      return 1;
    }
    spdlog::info("Envoy rate limit service (gRPC) listening on {}{}",
                 s.grpc_uds.empty() ? fmt::format("{}:{}", grpc_host, grpc_server->bound_port())
                                    : log_safe(where),
                 !grpc_tls                          ? ""
                 : grpc_tls->client_ca_file.empty() ? " (TLS)"
                                                    : " (mutual TLS)");
  }

  // Signals and housekeeping run on their own small loop beside the server's threads.
  boost::asio::io_context control;
  boost::asio::signal_set signals(control, SIGINT, SIGTERM, SIGHUP);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
      if (ec) return;
      if (signo == SIGHUP) {
        if (s.config_file.empty() && s.rls_config.empty()) {
          spdlog::info("SIGHUP: no rules file or RLS config to reload");
        }
        if (!s.config_file.empty()) load("reloaded on SIGHUP");
        if (!s.rls_config.empty()) {
          if (auto fresh = load_rls("reloaded on SIGHUP")) rls_service.set_config(std::move(fresh));
        }
        wait_signal();
        return;
      }
      spdlog::info("signal {}: draining connections", signo);
      if (grpc_server) grpc_server->shutdown();
      if (admin_server) admin_server->stop();
      server->stop();
    });
  };
  wait_signal();
  boost::asio::steady_timer sweep_timer(control);
  std::function<void()> schedule_sweep = [&] {
    sweep_timer.expires_after(std::chrono::seconds(5));
    sweep_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      store.sweep();
      schedule_sweep();
    });
  };
  schedule_sweep();

  // The rules file and the RLS config are watched by polling their identity once a second: it
  // survives editors that replace files and Kubernetes ConfigMaps that swap a symlink, which
  // inotify on the file misses. A directory's identity is that of every config file in it.
  auto identity = [](const std::vector<std::string>& files) {
    std::string id;
    for (const std::string& file : files) {
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0) continue;
      id += fmt::format("{}:{}:{}:{}:{}.{};", file, st.st_dev, st.st_ino, st.st_size,
                        st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    }
    return id;
  };
  auto rules_identity = [&] { return identity({s.config_file}); };
  auto rls_identity = [&] {
    std::error_code ec;
    return identity(floodgate::rls::config_files(s.rls_config, ec));
  };
  std::string rules_seen = s.config_file.empty() ? "" : rules_identity();
  std::string rls_seen = s.rls_config.empty() ? "" : rls_identity();
  boost::asio::steady_timer watch_timer(control);
  std::function<void()> schedule_watch = [&] {
    watch_timer.expires_after(std::chrono::seconds(1));
    watch_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (!s.config_file.empty()) {
        if (const std::string now = rules_identity(); !now.empty() && now != rules_seen) {
          rules_seen = now;
          load("reloaded after the file changed");
        }
      }
      if (!s.rls_config.empty()) {
        if (const std::string now = rls_identity(); !now.empty() && now != rls_seen) {
          rls_seen = now;
          if (auto fresh = load_rls("reloaded after a file changed")) {
            rls_service.set_config(std::move(fresh));
          }
        }
      }
      schedule_watch();
    });
  };
  if (!s.config_file.empty() || !s.rls_config.empty()) schedule_watch();
  std::thread control_thread([&] { control.run(); });

  server->run();
  if (admin_thread.joinable()) admin_thread.join();
  control.stop();
  control_thread.join();
  // The fleet and then the Redis store go before the server: checks still in flight fail and
  // answer into the server's (stopped) loops, which must still exist.
  fleet.reset();
  redis.reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"floodgate: a distributed rate limiter service", "floodgate"};
  app.set_version_flag("--version", std::string("floodgate ") + floodgate::kVersion);
  app.require_subcommand(0, 1);

  CheckArgs check_args;
  CLI::App* check = app.add_subcommand(
      "check",
      "Run decisions in-process on the memory store and print them (a demo of the algorithms)");
  check->add_option("--key", check_args.key, "Key to limit")->capture_default_str();
  check
      ->add_option("--algorithm", check_args.algorithm,
                   "token_bucket, gcra, leaky_bucket, fixed_window, sliding_window_log or "
                   "sliding_window_counter")
      ->capture_default_str();
  check->add_option("--limit", check_args.limit, "Capacity, burst or window limit")
      ->capture_default_str();
  check->add_option("--rate", check_args.rate, "Refill or leak rate per second (buckets)")
      ->capture_default_str();
  check->add_option("--window", check_args.window_s, "Window in seconds (window algorithms, gcra)")
      ->capture_default_str();
  check->add_option("--cost", check_args.cost, "Cost of each request (0 peeks)")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{4294967295}))
      ->capture_default_str();
  check->add_option("--repeat", check_args.repeat, "How many requests to send")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();

  std::vector<std::string> validate_paths;
  CLI::App* validate = app.add_subcommand(
      "validate",
      "Check rules files or envoyproxy/ratelimit configs (a file or a directory of .yaml files) "
      "and print what they define");
  validate->add_option("paths", validate_paths, "Files or directories")->required();
  bool validate_merge_domains = false;
  validate->add_flag("--merge-domains", validate_merge_domains,
                     "envoyproxy/ratelimit configs: let files of one PATH share a domain "
                     "(its MERGE_DOMAIN_CONFIG)");

  floodgate::app::Settings settings;
  CLI::App* serve = app.add_subcommand("serve", "Run the rate limit service");
  floodgate::app::add_settings(*serve, settings);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a bad flag or variable exits 2, as a bad setting does.
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (check->parsed()) return run_check(check_args);
  if (serve->parsed()) {
    // The rules file's `settings`, below flags and environment.
    std::vector<std::string> from_file;
    if (!settings.config_file.empty()) {
      auto file = floodgate::rules::load_settings(settings.config_file);
      if (auto* errors = std::get_if<floodgate::rules::LoadErrors>(&file)) {
        for (const auto& m : errors->messages) fmt::print(stderr, "floodgate: {}\n", m);
        return 2;
      }
      settings.file_settings = std::get<std::vector<floodgate::rules::FileSetting>>(file);
      auto applied = floodgate::app::apply_file_settings(*serve, settings.file_settings);
      if (!applied) {
        fmt::print(stderr, "floodgate: {}\n", applied.error().message);
        return 2;
      }
      from_file = std::move(*applied);
    }
    auto notes = floodgate::app::apply_envoy_ratelimit_env(
        *serve, settings,
        [](const char* name) -> std::optional<std::string> {
          const char* value = std::getenv(name);
          return value ? std::optional<std::string>(value) : std::nullopt;
        },
        from_file);
    if (!notes) {
      fmt::print(stderr, "floodgate: {}: {}\n", notes.error().field, notes.error().message);
      return 2;
    }
    if (!from_file.empty()) {
      std::string names;
      for (const auto& flag : from_file) names += (names.empty() ? "" : ", ") + flag.substr(2);
      notes->push_back(fmt::format("from {}: {}", settings.config_file, names));
    }
    return run_serve(settings, *notes);
  }
  if (validate->parsed()) return run_validate(validate_paths, validate_merge_domains);
  std::fputs(app.help().c_str(), stdout);
  return 0;
}
