#include "queue/rate_limit.hpp"

#include <cmath>

#include <fmt/format.h>

namespace budstikke::queue {

token_bucket make_token_bucket(std::string key, double rate_per_second, std::chrono::microseconds burst) {
  token_bucket b;
  b.key = std::move(key);
  b.interval_us = 1e6 / rate_per_second;
  b.tolerance_us = static_cast<double>(burst.count());
  return b;
}

namespace {
// Shortest exact decimal: the script reads it with tonumber.
std::string number(double v) { return fmt::format("{}", v); }
}  // namespace

void append_take_tokens(request& req, const std::vector<const token_bucket*>& buckets, std::int64_t wanted,
                        std::optional<std::int64_t> now_us) {
  req.begin_eval(take_tokens_script, buckets.size(), 2 + 2 * buckets.size());
  for (const auto* b : buckets) req.arg(b->key);
  req.arg(wanted);
  if (now_us) req.arg(*now_us);
  else req.arg(std::string_view());
  for (const auto* b : buckets) req.arg(number(b->interval_us)).arg(number(b->tolerance_us));
}

std::optional<token_grant> parse_token_grant(const redisReply* r) {
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return std::nullopt;
  auto granted = as_integer(r->element[0]);
  auto wait = as_integer(r->element[1]);
  auto limiting = as_integer(r->element[2]);
  if (!granted || !wait || !limiting || *granted < 0 || *wait < 0) return std::nullopt;
  return token_grant{*granted, std::chrono::microseconds(*wait), static_cast<int>(*limiting) - 1};
}

}  // namespace budstikke::queue
