// File: core/key_hash.h
//
// Stores identify a key by a 128-bit XXH3 hash of (algorithm, key). 128 bits make a collision
// between two live keys practically impossible (~1e-26 at a billion keys), so the memory store need
// not keep the key string; the hash is stable across processes and machines.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "floodgate/policy.h"

namespace floodgate::core {

struct KeyHash {
  std::uint64_t low = 0;
  std::uint64_t high = 0;

  friend bool operator==(const KeyHash&, const KeyHash&) = default;
};

KeyHash hash_key(Algorithm algorithm, std::string_view key);

// StringHash: XXH3 of a string, for hash maps and sets keyed by std::string and looked up by
// std::string_view without building a string (transparent); well mixed, so an open-addressing
// container need not remix it (avalanching).
struct StringHash {
  using is_transparent = void;
  using is_avalanching = void;
  std::size_t operator()(std::string_view s) const;
};

// KeyHashHasher: for hash maps. XXH3 output is already well mixed, so the map need not remix it.
struct KeyHashHasher {
  using is_avalanching = void;
  std::size_t operator()(const KeyHash& h) const { return h.low; }
};

}  // namespace floodgate::core
