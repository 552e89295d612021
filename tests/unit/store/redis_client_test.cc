// The Redis client's pure parts: URL parsing, key naming, the circuit breaker, the RESP codec.
#include <gtest/gtest.h>

#include "floodgate/redis_store.h"
#include "store/redis/circuit_breaker.h"
#include "store/redis/resp.h"

namespace floodgate {
namespace {

using redis::CircuitBreaker;

TEST(RedisUrl, ParsesHostPortDatabaseAndCredentials) {
  auto o = parse_redis_url("redis://app:s%40cret@cache.internal:6380/3").value();
  EXPECT_EQ(o.host, "cache.internal");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.username, "app");
  EXPECT_EQ(o.password, "s@cret");  // percent-decoded
  EXPECT_EQ(o.db, 3);
  EXPECT_FALSE(o.tls);
}

TEST(RedisUrl, PasswordAloneDefaultsAndTls) {
  auto o = parse_redis_url("rediss://:pw@127.0.0.1").value();
  EXPECT_TRUE(o.tls);
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.username, "");
  EXPECT_EQ(o.password, "pw");
  EXPECT_EQ(o.db, 0);
  EXPECT_EQ(parse_redis_url("redis://[::1]:7000").value().host, "::1");
}

TEST(RedisUrl, SentinelUrlsNameTheSentinelsAndTheMaster) {
  auto o =
      parse_redis_url("redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2,[::1]:5000/mymaster/2").value();
  ASSERT_EQ(o.sentinels.size(), 3u);
  EXPECT_EQ(o.sentinels[0], (std::pair<std::string, std::uint16_t>{"10.0.0.1", 26379}));
  EXPECT_EQ(o.sentinels[1], (std::pair<std::string, std::uint16_t>{"10.0.0.2", 26379}));
  EXPECT_EQ(o.sentinels[2], (std::pair<std::string, std::uint16_t>{"::1", 5000}));
  EXPECT_EQ(o.sentinel_master, "mymaster");
  EXPECT_EQ(o.password, "pw");
  EXPECT_EQ(o.db, 2);
  EXPECT_TRUE(o.host.empty());
  for (const char* bad :
       {"redis+sentinel://", "redis+sentinel://h:1", "redis+sentinel://h:1/",
        "redis+sentinel://h:0/m", "redis+sentinel://h:1,/m", "redis+sentinel://h:1/m/x"}) {
    auto r = parse_redis_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "REDIS_URL") << bad;
  }
}

TEST(RedisUrl, ClusterUrlsNameTheSeedNodes) {
  auto o =
      parse_redis_url("redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2,[::1]:7002").value();
  ASSERT_EQ(o.cluster_seeds.size(), 3u);
  EXPECT_EQ(o.cluster_seeds[0], (std::pair<std::string, std::uint16_t>{"10.0.0.1", 7000}));
  EXPECT_EQ(o.cluster_seeds[1], (std::pair<std::string, std::uint16_t>{"10.0.0.2", 6379}));
  EXPECT_EQ(o.cluster_seeds[2], (std::pair<std::string, std::uint16_t>{"::1", 7002}));
  EXPECT_EQ(o.username, "app");
  EXPECT_EQ(o.password, "s@cret");
  EXPECT_EQ(o.db, 0);
  EXPECT_TRUE(o.host.empty());
  EXPECT_TRUE(o.sentinels.empty());
  EXPECT_EQ(parse_redis_url("redis+cluster://h:1/0").value().cluster_seeds.size(), 1u);
  for (const char* bad : {"redis+cluster://", "redis+cluster://h:1,", "redis+cluster://h:0",
                          "redis+cluster://h:1/2", "redis+cluster://,h:1"}) {
    auto r = parse_redis_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "REDIS_URL") << bad;
  }
  EXPECT_NE(parse_redis_url("redis+cluster://h:1/2").error().message.find("database 0 only"),
            std::string::npos);
}

TEST(RedisUrl, UnixUrlsNameTheSocketPath) {
  auto o = parse_redis_url("unix://:s%40cret@/run/redis/redis.sock?db=2").value();
  EXPECT_EQ(o.unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(o.password, "s@cret");
  EXPECT_EQ(o.db, 2);
  EXPECT_FALSE(o.tls);
  EXPECT_EQ(parse_redis_url("unix:///tmp/r.sock").value().db, 0);
  for (const char* bad : {"unix://host/tmp/r.sock", "unix://", "unix:///",
                          "unix:///tmp/r.sock?db=x", "unix:///tmp/r.sock?timeout=1"}) {
    auto r = parse_redis_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().field, "REDIS_URL");
  }
}

TEST(RedisUrl, RefusesWhatItCannotUseNamingTheField) {
  for (const char* bad : {"http://localhost:6379", "localhost:6379", "redis://", "redis://h/x",
                          "redis://h/-1", "redis://h:0"}) {
    auto o = parse_redis_url(bad);
    ASSERT_FALSE(o) << bad;
    EXPECT_EQ(o.error().field, "REDIS_URL") << bad;
  }
}

TEST(RedisKey, NamespacedHashTaggedAndBounded) {
  EXPECT_EQ(RedisStore::redis_key(Algorithm::kFixedWindow, "user:42"), "fg:fw:{user:42}");
  EXPECT_EQ(RedisStore::redis_key(Algorithm::kGcra, "user:42"), "fg:gcra:{user:42}");
  // Long keys, braces (which would move the hash tag) and a leading '#' are hashed.
  const std::string long_key(4096, 'k');
  for (const std::string& key : {long_key, std::string("a{b}c"), std::string("#x")}) {
    const std::string k = RedisStore::redis_key(Algorithm::kTokenBucket, key);
    EXPECT_EQ(k.size(), std::string("fg:tb:{#}").size() + 32) << k;
    EXPECT_EQ(k.rfind("fg:tb:{#", 0), 0u) << k;
  }
  EXPECT_NE(RedisStore::redis_key(Algorithm::kTokenBucket, long_key),
            RedisStore::redis_key(Algorithm::kTokenBucket, long_key + "x"));
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndProbesAfterCooldown) {
  CircuitBreaker b(3, 1000);
  EXPECT_TRUE(b.allow(0));
  b.record_failure(0);
  b.record_failure(0);
  b.record_success();  // not consecutive any more
  b.record_failure(1);
  b.record_failure(2);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  b.record_failure(3);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.allow(500));
  EXPECT_FALSE(b.allow(1002));
  // Cooldown over: exactly one probe.
  EXPECT_TRUE(b.allow(1003));
  EXPECT_EQ(b.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_FALSE(b.allow(1004));
  // The probe fails: open again for a whole cooldown.
  b.record_failure(1010);
  EXPECT_EQ(b.state(), CircuitBreaker::State::kOpen);
  EXPECT_FALSE(b.allow(2000));
  EXPECT_TRUE(b.allow(2010));
  b.record_success();
  EXPECT_EQ(b.state(), CircuitBreaker::State::kClosed);
  EXPECT_TRUE(b.allow(2011));
  EXPECT_EQ(b.times_opened(), 2u);
}

TEST(Resp, EncodesBinarySafeCommandsAndDecodesRepliesInPieces) {
  std::string out;
  const std::string_view args[] = {"SET", std::string_view("a\0b", 3), ""};
  redis::append_command(out, args);
  EXPECT_EQ(out, std::string("*3\r\n$3\r\nSET\r\n$3\r\na\0b\r\n$0\r\n\r\n", 28));

  redis::RespReader reader;
  const std::string wire = "*2\r\n:42\r\n$-1\r\n-NOSCRIPT No matching script\r\n+OK\r\n";
  for (char c : wire) ASSERT_TRUE(reader.feed(std::string_view(&c, 1)));
  redis::Reply array = reader.next();
  ASSERT_TRUE(array);
  ASSERT_EQ(array->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(array->elements, 2u);
  EXPECT_EQ(array->element[0]->integer, 42);
  EXPECT_EQ(array->element[1]->type, REDIS_REPLY_NIL);
  redis::Reply error = reader.next();
  ASSERT_TRUE(error);
  EXPECT_EQ(error->type, REDIS_REPLY_ERROR);
  EXPECT_EQ(redis::text(*error), "NOSCRIPT No matching script");
  redis::Reply ok = reader.next();
  ASSERT_TRUE(ok);
  EXPECT_EQ(redis::text(*ok), "OK");
  EXPECT_FALSE(reader.next());
  EXPECT_FALSE(reader.failed());

  // An absurd array header fails the reader instead of allocating its element table.
  redis::RespReader huge;
  ASSERT_TRUE(huge.feed("*600000000\r\n") || huge.failed());
  EXPECT_FALSE(huge.next());
  EXPECT_TRUE(huge.failed());

  redis::RespReader broken;
  broken.feed("!nonsense\r\n");
  EXPECT_FALSE(broken.next());
  EXPECT_TRUE(broken.failed());
  EXPECT_FALSE(broken.error().empty());
}

}  // namespace
}  // namespace floodgate
