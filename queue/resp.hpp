// RESP without I/O: commands are encoded into a pipeline buffer, replies are parsed by hiredis's
// redisReader and handed out as owned trees. The connection (redis.hpp) only moves bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <hiredis/hiredis.h>

namespace budstikke::queue {

struct reply_deleter {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

// A pipeline: any number of commands, sent in one write, answered by as many replies in order.
class request {
 public:
  // Starts a command of `argc` arguments; follow with exactly `argc` calls to arg().
  request& begin(std::size_t argc);
  request& arg(std::string_view a);
  request& arg(std::int64_t n);
  request& arg(const char* a) { return arg(std::string_view(a)); }
  request& arg(const std::string& a) { return arg(std::string_view(a)); }
  template <typename T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, std::int64_t>)
  request& arg(T n) { return arg(static_cast<std::int64_t>(n)); }

  template <typename... Args>
  request& command(const Args&... args) {
    begin(sizeof...(Args));
    (arg(args), ...);
    return *this;
  }

  std::size_t commands() const { return commands_; }
  // The bytes to send. Throws std::logic_error if a command got fewer or more arguments than
  // its begin() announced: the pipeline would be misframed, a bug that must not reach Redis.
  const std::string& payload() const;
  bool empty() const { return commands_ == 0; }
  void clear() {
    payload_.clear();
    commands_ = 0;
    announced_ = written_ = 0;
  }

 private:
  void check_complete() const;

  std::string payload_;
  std::size_t commands_ = 0;
  std::size_t announced_ = 0;  // arguments the current command announced
  std::size_t written_ = 0;    // and wrote so far
};

// Incremental reply parser over hiredis's redisReader.
class reply_parser {
 public:
  reply_parser();
  ~reply_parser();
  reply_parser(const reply_parser&) = delete;
  reply_parser& operator=(const reply_parser&) = delete;

  // Feeds bytes; returns false on a protocol error.
  bool feed(const char* data, std::size_t n);
  // The next complete reply, nullptr if more bytes are needed. Sets `protocol_error` when the
  // stream cannot be parsed (the connection must then be dropped).
  reply_ptr next(bool& protocol_error);
  void reset();

 private:
  redisReader* reader_;
};

// Views over replies, tolerant of wrong types (a buggy peer must not crash us).
inline std::string_view as_string(const redisReply* r) {
  if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
            r->type == REDIS_REPLY_ERROR))
    return {r->str, r->len};
  return {};
}
inline bool is_error(const redisReply* r) { return r && r->type == REDIS_REPLY_ERROR; }
inline bool is_nil(const redisReply* r) { return !r || r->type == REDIS_REPLY_NIL; }
std::optional<std::int64_t> as_integer(const redisReply* r);

}  // namespace budstikke::queue
