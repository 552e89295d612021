// Redis Cluster key slots: CRC16 (XMODEM) and hash tags, on the examples of the Redis Cluster
// specification, and on floodgate's own key shapes.
#include "store/redis/cluster_slot.h"

#include "store/redis/cluster.h"

#include <gtest/gtest.h>

#include "floodgate/redis_store.h"

namespace floodgate::redis {
namespace {

TEST(ClusterSlot, Crc16IsXmodem) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the specification's check value
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlot, HashTagsFollowTheSpecification) {
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");  // an empty first tag: the whole key
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");
  EXPECT_EQ(hash_tag("no tag"), "no tag");
  EXPECT_EQ(hash_tag("open{only"), "open{only");
}

TEST(ClusterSlot, KnownSlots) {
  // As CLUSTER KEYSLOT answers them.
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  // Every key of one floodgate decision shares the user key's slot.
  const std::string fw = RedisStore::redis_key(Algorithm::kFixedWindow, "user:42");
  const std::string swl = RedisStore::redis_key(Algorithm::kSlidingWindowLog, "user:42");
  EXPECT_EQ(key_slot(fw), key_slot("user:42"));
  EXPECT_EQ(key_slot(swl), key_slot(swl + ":m"));
}

TEST(ClusterRedirect, ParsesMovedAndAsk) {
  Redirect r;
  ASSERT_TRUE(parse_redirect("MOVED 3999 127.0.0.1:6381", r));
  EXPECT_FALSE(r.ask);
  EXPECT_EQ(r.slot, 3999);
  EXPECT_EQ(r.address, "127.0.0.1:6381");
  ASSERT_TRUE(parse_redirect("ASK 16383 ::1:7000", r));
  EXPECT_TRUE(r.ask);
  EXPECT_EQ(r.slot, 16383);
  EXPECT_EQ(r.address, "::1:7000");
  for (const char* other : {"MOVED", "MOVED 3999", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "ASK 1 ",
                            "TRYAGAIN Multiple keys request during rehashing of slot",
                            "ERR unknown command", "CLUSTERDOWN The cluster is down"}) {
    EXPECT_FALSE(parse_redirect(other, r)) << other;
  }
}

}  // namespace
}  // namespace floodgate::redis
