// RESP without I/O: commands are encoded into a pipeline buffer, replies are parsed by hiredis's
// redisReader and handed out as owned trees. The connection (redis.hpp) only moves bytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <hiredis/hiredis.h>

#include "queue/script.hpp"

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

  // Starts a call of script `s` by its SHA1 (EVALSHA sha1 numkeys); follow with exactly
  // `numkeys + numargs` calls to arg(), the keys first. The connection sends it again with its
  // source if Redis does not know it (see resend_unknown_scripts for what a pipeline holding
  // script calls must respect). Throws std::logic_error between MULTI and EXEC.
  request& begin_eval(const script& s, std::size_t numkeys, std::size_t numargs);
  // A whole script call: `numkeys` keys, then the arguments.
  template <typename... Args>
  request& eval(const script& s, std::size_t numkeys, const Args&... keys_then_args) {
    begin_eval(s, numkeys, sizeof...(Args) - std::min(numkeys, sizeof...(Args)));
    (arg(keys_then_args), ...);
    return *this;
  }

  // Where a script call is, so that it can be sent again as EVAL.
  struct script_call {
    std::size_t command = 0;  // its index in the pipeline: where its reply is
    const script* called = nullptr;
    std::size_t argc = 0;              // arguments of the whole command
    std::size_t numkeys_at = 0;        // payload offset of numkeys: the arguments after the SHA1
    std::size_t end = std::string::npos;  // payload offset just past the command
  };
  std::span<const script_call> script_calls() const { return script_calls_; }

  std::size_t commands() const { return commands_; }
  // The bytes to send. Throws std::logic_error if a command got fewer or more arguments than
  // its begin() announced: the pipeline would be misframed, a bug that must not reach Redis.
  const std::string& payload() const;
  bool empty() const { return commands_ == 0; }
  void clear() {
    payload_.clear();
    commands_ = 0;
    announced_ = written_ = 0;
    script_calls_.clear();
    in_multi_ = false;
  }

 private:
  friend request resend_unknown_scripts(const request& req, const std::vector<reply_ptr>& replies,
                                        std::vector<std::size_t>& positions);
  void check_complete() const;
  void command_complete();
  // Appends `call` of `from` again, as EVAL with the script's source.
  request& eval_again(const request& from, const script_call& call);

  std::string payload_;
  std::size_t commands_ = 0;
  std::size_t announced_ = 0;  // arguments the current command announced
  std::size_t written_ = 0;    // and wrote so far
  std::vector<script_call> script_calls_;
  bool in_multi_ = false;      // between MULTI and EXEC or DISCARD
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

// Redis's answer to a script call it does not know (NOSCRIPT): the call did not run.
bool is_noscript(const redisReply* r);

// The NOSCRIPT fallback, without I/O: the script calls of `req` that Redis answered NOSCRIPT,
// again as EVAL with their source, in their order; `positions[i]` is where the i-th one's reply
// belongs in `replies`. An empty request when every script call ran.
//
// A NOSCRIPT call did not run, but every command after it in the pipeline did, so sending it
// again runs it after them. A pipeline may therefore hold a script call only where running the
// call later means the same:
//  - no later command of the pipeline reads or writes what the call touches, unless their order
//    does not matter;
//  - the script calls of one pipeline do not depend on each other's order (a call whose script
//    Redis knew may run before an earlier one that is sent again);
//  - never between MULTI and EXEC: the transaction would already have run without the call
//    (request::begin_eval refuses it).
// The pipelines holding script calls in this tree keep to it: one record_outcomes per campaign
// (each touches its own campaign's keys only); ZREMs from the registry plus one append_events
// (nothing else touches the events stream); one move_due_retries per campaign; one take_tokens
// per bucket group (groups may share a bucket, but each call only takes what the buckets allow
// when it runs, as a call of another process arriving in between would); and single calls
// (transition, requeue_dead, withdraw_consent).
request resend_unknown_scripts(const request& req, const std::vector<reply_ptr>& replies,
                               std::vector<std::size_t>& positions);

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
