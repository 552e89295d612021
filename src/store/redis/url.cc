// parse_redis_url(): apart from the client, so tools and the fuzzer can use it without Asio.
#include <charconv>

#include <boost/url/parse.hpp>

#include "floodgate/redis_store.h"

namespace floodgate {

Result<RedisOptions> parse_redis_url(std::string_view url) {
  auto fail = [](std::string message) { return ParamError{"REDIS_URL", std::move(message)}; };
  auto parsed = boost::urls::parse_uri(boost::core::string_view(url.data(), url.size()));
  if (!parsed) return fail("is not a URL: " + parsed.error().message());
  const auto& u = *parsed;
  RedisOptions o;
  const std::string scheme = u.scheme();
  if (scheme == "rediss") {
    o.tls = true;
  } else if (scheme != "redis") {
    return fail("must start with redis:// or rediss://, got " + scheme + "://");
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
    int db = -1;
    const auto [end, ec] = std::from_chars(path.data(), path.data() + path.size(), db);
    if (ec != std::errc() || end != path.data() + path.size() || db < 0) {
      return fail("has an invalid database number \"" + path + "\"");
    }
    o.db = db;
  }
  return o;
}

}  // namespace floodgate
