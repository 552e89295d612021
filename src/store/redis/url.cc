// parse_redis_url(): apart from the client, so tools and the fuzzer can use it without Asio.
#include <charconv>

#include <fmt/format.h>
#include <boost/url/parse.hpp>

#include "floodgate/redis_store.h"

namespace floodgate {

namespace {

// database(): a URL's database number, or the error naming it.
Result<int> database(std::string_view digits) {
  int db = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), db);
  if (ec != std::errc() || end != digits.data() + digits.size() || db < 0) {
    return ParamError{"REDIS_URL",
                      "has an invalid database number \"" + std::string(digits) + "\""};
  }
  return db;
}

// A multi-host URL's authority: "[user:password@]host:port[,host:port...]".
struct MultiHost {
  std::string username;
  std::string password;
  std::vector<std::pair<std::string, std::uint16_t>> hosts;
  std::string_view path;  // after the first '/', if any
};

Result<MultiHost> parse_multi_host(std::string_view rest, std::string_view what,
                                   std::uint16_t default_port) {
  auto fail = [](std::string message) { return ParamError{"REDIS_URL", std::move(message)}; };
  MultiHost m;
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  m.path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    // user:password@ — parsed as a one-host URL, so percent-encoding works as for redis://.
    // (The text must outlive the parsed view.)
    const std::string creds_url =
        "redis://" + std::string(authority.substr(0, at + 1)) + "localhost";
    auto creds = boost::urls::parse_uri(creds_url);
    if (!creds) return fail("has invalid credentials");
    m.username = creds->user();
    m.password = creds->password();
    authority.remove_prefix(at + 1);
  }
  for (bool more = !authority.empty(); more;) {
    const auto comma = authority.find(',');
    std::string_view one = authority.substr(0, comma);
    more = comma != std::string_view::npos;
    authority = more ? authority.substr(comma + 1) : std::string_view();
    if (one.empty()) return fail(fmt::format("has an empty {} address", what));
    const std::string one_url = "redis://" + std::string(one);
    auto parsed = boost::urls::parse_uri(one_url);
    if (!parsed || parsed->host().empty()) {
      return fail(fmt::format("has an invalid {} address \"{}\"", what, one));
    }
    std::uint16_t port = default_port;
    if (parsed->has_port()) {
      port = parsed->port_number();
      if (port == 0) return fail(fmt::format("has an invalid {} port in \"{}\"", what, one));
    }
    m.hosts.emplace_back(parsed->host_address(), port);
  }
  if (m.hosts.empty()) return fail(fmt::format("names no {}", what));
  return m;
}

Result<RedisOptions> parse_sentinel_url(std::string_view url) {
  auto fail = [](std::string message) { return ParamError{"REDIS_URL", std::move(message)}; };
  constexpr std::string_view kScheme = "redis+sentinel://";
  auto multi = parse_multi_host(url.substr(kScheme.size()), "sentinel", 26379);
  if (!multi) return multi.error();
  RedisOptions o;
  o.username = std::move(multi->username);
  o.password = std::move(multi->password);
  o.sentinels = std::move(multi->hosts);
  const std::string_view path = multi->path;
  const auto next = path.find('/');
  o.sentinel_master = std::string(path.substr(0, next));
  if (o.sentinel_master.empty()) {
    return fail("names no master: redis+sentinel://host:port,host:port/master-name");
  }
  if (next != std::string_view::npos) {
    auto db = database(path.substr(next + 1));
    if (!db) return db.error();
    o.db = *db;
  }
  o.host.clear();
  o.port = 0;
  return o;
}

Result<RedisOptions> parse_cluster_url(std::string_view url) {
  auto fail = [](std::string message) { return ParamError{"REDIS_URL", std::move(message)}; };
  constexpr std::string_view kScheme = "redis+cluster://";
  auto multi = parse_multi_host(url.substr(kScheme.size()), "cluster node", 6379);
  if (!multi) return multi.error();
  const std::string_view path = multi->path;
  if (!path.empty() && path != "0") {
    return fail("names database \"" + std::string(path) +
                "\": a Redis Cluster has database 0 only");
  }
  RedisOptions o;
  o.username = std::move(multi->username);
  o.password = std::move(multi->password);
  o.cluster_seeds = std::move(multi->hosts);
  o.host.clear();
  o.port = 0;
  return o;
}

}  // namespace

Result<RedisOptions> parse_redis_url(std::string_view url) {
  auto fail = [](std::string message) { return ParamError{"REDIS_URL", std::move(message)}; };
  if (url.starts_with("redis+sentinel://")) return parse_sentinel_url(url);
  if (url.starts_with("redis+cluster://")) return parse_cluster_url(url);
  auto parsed = boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!parsed) return fail("is not a URL: " + parsed.error().message());
  const auto& u = *parsed;
  RedisOptions o;
  const std::string scheme = u.scheme();
  if (scheme == "unix") {
    // unix:///path/to/redis.sock[?db=N], credentials as in redis:// before the (empty) host.
    if (u.has_authority() && !u.host().empty()) {
      return fail("a unix:// URL names a socket path, not a host: unix:///path/to/redis.sock");
    }
    o.unix_socket = u.path();
    if (o.unix_socket.size() < 2 || o.unix_socket.front() != '/') {
      return fail("names no socket path: unix:///path/to/redis.sock");
    }
    o.host.clear();
    o.port = 0;
    if (u.has_userinfo()) {
      o.username = u.user();
      o.password = u.password();
    }
    const auto params = u.params();
    for (const auto& param : params) {
      if (param.key != "db") return fail("knows the query parameter db only, got " + param.key);
      auto db = database(param.value);
      if (!db) return db.error();
      o.db = *db;
    }
    return o;
  }
  if (scheme == "rediss") {
    o.tls = true;
  } else if (scheme != "redis") {
    return fail("must start with redis://, rediss://, redis+sentinel://, redis+cluster:// or " +
                std::string("unix://, got ") + scheme + "://");
  }
  if (!u.has_authority() || u.host().empty()) return fail("names no host");
  o.host = u.host_address();
  if (u.has_port()) {
    const auto port = u.port_number();
    if (port == 0) return fail("has an invalid port: " + std::string(u.port()));
    o.port = port;
  }
  if (u.has_userinfo()) {
    o.username = u.user();
    o.password = u.password();
  }
  std::string path = u.path();
  while (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (!path.empty()) {
    auto db = database(path);
    if (!db) return db.error();
    o.db = *db;
  }
  return o;
}

}  // namespace floodgate
