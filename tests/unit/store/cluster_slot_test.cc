// Redis Cluster key slots: CRC16 (XMODEM) and hash tags, on the examples of the Redis Cluster
// specification, and on floodgate's own key shapes.
#include "store/redis/cluster_slot.h"

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

}  // namespace
}  // namespace floodgate::redis
