#include "core/key_hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace floodgate::core {

KeyHash hash_key(Algorithm algorithm, std::string_view key) {
  // The algorithm is the seed: the same key under two algorithms names two independent states.
  const XXH128_hash_t h = XXH3_128bits_withSeed(
      key.data(), key.size(), 0x666c6f6f64ULL + static_cast<XXH64_hash_t>(algorithm));
  return {h.low64, h.high64};
}

std::size_t StringHash::operator()(std::string_view s) const {
  return XXH3_64bits(s.data(), s.size());
}

}  // namespace floodgate::core
