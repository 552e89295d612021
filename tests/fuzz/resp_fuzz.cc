// libFuzzer target: the RESP reader fed arbitrary bytes in arbitrary pieces (what a broken or
// hostile server could send), and the Redis URL parser. Neither may crash, leak or loop; a reader
// that failed stays failed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "floodgate/redis_store.h"
#include "store/redis/resp.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input.front() == 'U') {
    (void)floodgate::parse_redis_url(input.substr(1));
    return 0;
  }
  floodgate::redis::RespReader reader;
  // The first byte picks the piece size, so replies get split at every possible point.
  const std::size_t piece = input.empty() ? 1 : 1 + static_cast<unsigned char>(input.front()) % 17;
  for (std::size_t at = 0; at < input.size(); at += piece) {
    if (!reader.feed(input.substr(at, piece))) break;
    while (floodgate::redis::Reply reply = reader.next()) {
      (void)floodgate::redis::text(*reply);
    }
    if (reader.failed()) break;
  }
  if (reader.failed() && reader.next()) __builtin_trap();
  return 0;
}
