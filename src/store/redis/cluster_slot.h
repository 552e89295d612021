// File: store/redis/cluster_slot.h
//
// key_slot(): the Redis Cluster hash slot of a key — CRC16 (XMODEM: polynomial 0x1021, initial
// value 0) of the key's hash tag, modulo 16384. The hash tag is the part between the first '{'
// and the next '}' when that part is not empty; otherwise the whole key. floodgate's keys
// (`fg:<algorithm>:{<key>}`) always carry a tag, so every key one decision touches lands in one
// slot. Matches CLUSTER KEYSLOT (tests/unit/store/cluster_slot_test.cc checks Redis' own examples).
#pragma once

#include <cstdint>
#include <string_view>

namespace floodgate::redis {

inline constexpr std::uint16_t kClusterSlots = 16384;

std::uint16_t crc16(std::string_view bytes);
std::string_view hash_tag(std::string_view key);
inline std::uint16_t key_slot(std::string_view key) {
  return static_cast<std::uint16_t>(crc16(hash_tag(key)) % kClusterSlots);
}

}  // namespace floodgate::redis
