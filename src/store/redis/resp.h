// File: store/redis/resp.h
//
// RESP2 on the wire, through hiredis 0.14: its reader (incremental, battle-tested) decodes replies
// and its formatter encodes commands. hiredis' own I/O is not used: sockets are Asio's (see
// connection.h). Everything hiredis stays behind this header.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <hiredis/hiredis.h>

namespace floodgate::redis {

// release_reply(): frees a reply, keeping its objects for the next replies this thread reads
// (see resp.cc).
void release_reply(redisReply* reply);

struct ReplyDeleter {
  void operator()(redisReply* reply) const { release_reply(reply); }
};
// Reply: one decoded reply (hiredis' redisReply: type, integer, str/len, element/elements).
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// text(): a string, status or error reply's bytes; "" for other types.
inline std::string_view text(const redisReply& reply) {
  return reply.str ? std::string_view(reply.str, reply.len) : std::string_view();
}

// RespReader: feed it bytes as they arrive, take whole replies out.
//
// Not thread-safe.
class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  // feed(): false when the stream is not valid RESP (error() says why); the reader is then
  // unusable and the connection must be dropped.
  bool feed(std::string_view bytes);
  // next(): the next whole reply, or null when more bytes are needed (or after a protocol error;
  // check failed()).
  Reply next();
  bool failed() const { return failed_; }
  std::string error() const;

 private:
  redisReader* reader_;
  bool failed_ = false;
};

// append_command(): encodes a command (its arguments, binary-safe) onto `out`.
void append_command(std::string& out, std::span<const std::string_view> args);

}  // namespace floodgate::redis
