#include "store/redis/resp.h"

#include <array>
#include <cstdlib>
#include <new>
#include <vector>

namespace floodgate::redis {
namespace {

// hiredis 0.14 allocates an array reply's element table as soon as it reads the header, so
// "*600000000\r\n" from a broken or hostile server would ask for gigabytes. Our replies have at
// most a handful of elements: a larger array fails the reader (and drops the connection) instead.
constexpr int kMaxArrayElements = 4096;

const redisReplyObjectFunctions& default_functions() {
  static const redisReplyObjectFunctions functions = [] {
    redisReader* probe = redisReaderCreate();
    if (probe == nullptr) throw std::bad_alloc();
    const redisReplyObjectFunctions copy = *probe->fn;
    redisReaderFree(probe);
    return copy;
  }();
  return functions;
}

// Reply objects kept for reuse by this thread: a script call's reply is an array of six integers
// per check, and allocating each of them (as hiredis does) was ~6 malloc/free pairs per check.
// Every object here came from malloc (hiredis' calloc or ours), so whatever frees one with
// free() instead (hiredis' freeReplyObject on a reader error) is still right.
constexpr std::size_t kMaxPooled = 4096;
struct ReplyPool {
  std::vector<redisReply*> free;
  ~ReplyPool() {
    for (redisReply* r : free) std::free(r);
  }
};
thread_local ReplyPool reply_pool;

void* create_integer(const redisReadTask* task, long long value) {
  redisReply* r = nullptr;
  std::vector<redisReply*>& pooled_replies = reply_pool.free;
  if (pooled_replies.empty()) {
    r = static_cast<redisReply*>(std::calloc(1, sizeof(redisReply)));
    if (r == nullptr) return nullptr;
  } else {
    r = pooled_replies.back();
    pooled_replies.pop_back();
    *r = redisReply{};
  }
  r->type = REDIS_REPLY_INTEGER;
  r->integer = value;
  if (task->parent != nullptr) {
    static_cast<redisReply*>(task->parent->obj)->element[task->idx] = r;
  }
  return r;
}

redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions functions = [] {
    redisReplyObjectFunctions f = default_functions();
    f.createArray = [](const redisReadTask* task, int elements) -> void* {
      if (elements > kMaxArrayElements) return nullptr;  // the reader reports an error
      return default_functions().createArray(task, elements);
    };
    f.createInteger = create_integer;
    return f;
  }();
  return &functions;
}

}  // namespace

void release_reply(redisReply* reply) {
  if (reply == nullptr) return;
  switch (reply->type) {
    case REDIS_REPLY_ARRAY:
      for (std::size_t i = 0; i < reply->elements; ++i) release_reply(reply->element[i]);
      std::free(reply->element);
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      std::free(reply->str);
      break;
    default:
      break;
  }
  std::vector<redisReply*>& pooled_replies = reply_pool.free;
  if (pooled_replies.size() < kMaxPooled) {
    pooled_replies.push_back(reply);
  } else {
    std::free(reply);
  }
}

RespReader::RespReader() : reader_(redisReaderCreateWithFunctions(bounded_functions())) {
  if (reader_ == nullptr) throw std::bad_alloc();
}

RespReader::~RespReader() { redisReaderFree(reader_); }

bool RespReader::feed(std::string_view bytes) {
  if (failed_) return false;
  if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) failed_ = true;
  return !failed_;
}

Reply RespReader::next() {
  if (failed_) return nullptr;
  void* reply = nullptr;
  if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
    failed_ = true;
    return nullptr;
  }
  return Reply(static_cast<redisReply*>(reply));
}

std::string RespReader::error() const {
  return failed_ ? std::string(reader_->errstr) : std::string();
}

void append_command(std::string& out, std::span<const std::string_view> args) {
  constexpr std::size_t kInline = 16;
  std::array<const char*, kInline> inline_argv{};
  std::array<std::size_t, kInline> inline_lens{};
  std::vector<const char*> heap_argv;
  std::vector<std::size_t> heap_lens;
  const char** argv = inline_argv.data();
  std::size_t* lens = inline_lens.data();
  if (args.size() > kInline) {
    heap_argv.resize(args.size());
    heap_lens.resize(args.size());
    argv = heap_argv.data();
    lens = heap_lens.data();
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  char* command = nullptr;
  const int length = redisFormatCommandArgv(&command, static_cast<int>(args.size()), argv, lens);
  if (length < 0 || command == nullptr) throw std::bad_alloc();
  out.append(command, static_cast<std::size_t>(length));
  redisFreeCommand(command);
}

}  // namespace floodgate::redis
