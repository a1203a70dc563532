#include "queue/rate_limit.hpp"

#include <cmath>

#include <fmt/format.h>

namespace budstikke::queue {

// Per bucket, with TAT t (at least now): the k-th token (k = 1, 2, ...) starts at
// t + (k - 1) * interval and may be taken while that is no later than now + tolerance. The call
// grants the smallest such count over the buckets, then moves each TAT on by granted * interval.
// TATs are stored rounded to whole microseconds ("%.0f": Lua's tostring keeps 14 digits only);
// a key expires once its TAT has passed, when the bucket is full anyway.
const std::string_view take_tokens_script = R"lua(
if redis.replicate_commands then pcall(redis.replicate_commands) end
local wanted = tonumber(ARGV[1])
local now
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[2])
end
local n = #KEYS
local tat, interval, tolerance = {}, {}, {}
local granted = wanted
for i = 1, n do
  interval[i] = tonumber(ARGV[1 + 2 * i])
  tolerance[i] = tonumber(ARGV[2 + 2 * i])
  local t = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if t < now then t = now end
  tat[i] = t
  local k = math.floor((now + tolerance[i] - t) / interval[i]) + 1
  if k < 0 then k = 0 end
  if k < granted then granted = k end
end
local wait, limiting = 0, 0
for i = 1, n do
  local t = tat[i] + granted * interval[i]
  if granted > 0 then
    redis.call('SET', KEYS[i], string.format('%.0f', t), 'PX', math.floor((t - now) / 1000) + 1000)
  end
  if granted < wanted then
    local ready = t - tolerance[i] - now
    if ready > wait then
      wait = ready
      limiting = i
    end
  end
end
return {granted, math.ceil(wait), limiting}
)lua";

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
  req.begin(3 + buckets.size() + 2 + 2 * buckets.size()).arg("EVAL").arg(take_tokens_script).arg(buckets.size());
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
