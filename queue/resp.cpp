#include "queue/resp.hpp"

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
  append_length(payload_, '$', a.size());
  payload_.append(a);
  payload_.append("\r\n", 2);
  return *this;
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
