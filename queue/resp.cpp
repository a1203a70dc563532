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

reply_parser::reply_parser() : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
}

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
  reader_ = redisReaderCreate();
  if (!reader_) throw std::bad_alloc();
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
