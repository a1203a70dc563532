#include "queue/resp.hpp"

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace budstikke::queue {
namespace {

void append_length(std::string& out, char kind, std::size_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.push_back(kind);
  out.append(buf, r.ptr);
  out.append("\r\n", 2);
}

// hiredis (0.14, as Debian ships it) allocates an array of the size a reply announces before a
// single element has arrived, and reads the count without checking its digits: one line from a
// broken or hostile server ("*2147483647") costs 16 GiB. Arrays larger than any reply the engine
// asks for are refused as a protocol error (the connection is then dropped).
constexpr int max_array_elements = 1 << 20;

void* (*hiredis_create_array)(const redisReadTask*, int) = nullptr;

void* create_bounded_array(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > max_array_elements) return nullptr;  // hiredis reports it as an error
  return hiredis_create_array(task, elements);
}

// hiredis's own reply objects (freed with freeReplyObject), with the array bound above.
redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions functions = [] {
    redisReader* probe = redisReaderCreate();
    if (!probe) throw std::bad_alloc();
    redisReplyObjectFunctions f = *probe->fn;
    redisReaderFree(probe);
    hiredis_create_array = f.createArray;
    f.createArray = &create_bounded_array;
    return f;
  }();
  return &functions;
}

redisReader* make_reader() {
  redisReader* r = redisReaderCreateWithFunctions(bounded_functions());
  if (!r) throw std::bad_alloc();
  return r;
}

bool equals_ignoring_case(std::string_view a, std::string_view upper) {
  return a.size() == upper.size() && std::equal(a.begin(), a.end(), upper.begin(), [](char x, char u) {
           return (x >= 'a' && x <= 'z' ? static_cast<char>(x - 'a' + 'A') : x) == u;
         });
}

}  // namespace

request& request::begin(std::size_t argc) {
  check_complete();
  append_length(payload_, '*', argc);
  ++commands_;
  announced_ = argc;
  written_ = 0;
  return *this;
}

void request::check_complete() const {
  if (written_ != announced_)
    throw std::logic_error("RESP request: a command announced " + std::to_string(announced_) + " arguments but got " +
                           std::to_string(written_));
}

const std::string& request::payload() const {
  check_complete();
  return payload_;
}

request& request::arg(std::string_view a) {
  if (++written_ > announced_) check_complete();
  if (written_ == 1) {
    if (equals_ignoring_case(a, "MULTI")) in_multi_ = true;
    else if (equals_ignoring_case(a, "EXEC") || equals_ignoring_case(a, "DISCARD")) in_multi_ = false;
  }
  append_length(payload_, '$', a.size());
  payload_.append(a);
  payload_.append("\r\n", 2);
  if (written_ == announced_) command_complete();
  return *this;
}

void request::command_complete() {
  if (!script_calls_.empty() && script_calls_.back().end == std::string::npos) script_calls_.back().end = payload_.size();
}

request& request::begin_eval(const script& s, std::size_t numkeys, std::size_t numargs) {
  if (in_multi_)
    throw std::logic_error("RESP request: script " + std::string(s.name) +
                           " between MULTI and EXEC, where a NOSCRIPT answer could not be sent again");
  const std::size_t argc = 3 + numkeys + numargs;
  begin(argc).arg("EVALSHA").arg(s.sha1);
  script_calls_.push_back({commands_ - 1, &s, argc, payload_.size(), std::string::npos});
  return arg(numkeys);
}

request& request::eval_again(const request& from, const script_call& call) {
  if (call.end == std::string::npos || call.end > from.payload_.size())
    throw std::logic_error("RESP request: a script call to send again is incomplete");
  begin(call.argc).arg("EVAL").arg(call.called->source);
  // numkeys, the keys and the arguments, byte for byte as they were sent.
  payload_.append(from.payload_, call.numkeys_at, call.end - call.numkeys_at);
  written_ = announced_;
  return *this;
}

bool is_noscript(const redisReply* r) { return is_error(r) && as_string(r).starts_with("NOSCRIPT"); }

request resend_unknown_scripts(const request& req, const std::vector<reply_ptr>& replies,
                               std::vector<std::size_t>& positions) {
  request again;
  positions.clear();
  for (const auto& call : req.script_calls()) {
    if (call.command < replies.size() && is_noscript(replies[call.command].get())) {
      again.eval_again(req, call);
      positions.push_back(call.command);
    }
  }
  return again;
}

request& request::arg(std::int64_t n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

reply_parser::reply_parser() : reader_(make_reader()) {}

reply_parser::~reply_parser() { redisReaderFree(reader_); }

bool reply_parser::feed(const char* data, std::size_t n) {
  return redisReaderFeed(reader_, data, n) == REDIS_OK;
}

reply_ptr reply_parser::next(bool& protocol_error) {
  void* reply = nullptr;
  protocol_error = redisReaderGetReply(reader_, &reply) != REDIS_OK;
  return reply_ptr(static_cast<redisReply*>(reply));
}

void reply_parser::reset() {
  redisReaderFree(reader_);
  reader_ = make_reader();
}

std::optional<std::int64_t> as_integer(const redisReply* r) {
  if (!r) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(r->str, r->str + r->len, v);
    if (ec == std::errc() && p == r->str + r->len) return v;
  }
  return std::nullopt;
}

}  // namespace budstikke::queue
