// Token buckets shared through Redis: a GCRA (generic cell rate algorithm) in one Lua script, so
// every shard of every process takes from the same buckets and a configured rate is the total.
//
// A bucket is one key holding its theoretical arrival time (TAT, microseconds since the epoch).
// One call takes up to n tokens from several buckets at once (all the buckets a group of
// messages must pass), atomically: it grants the largest k <= n that every bucket allows now.
// Over any interval of length W a bucket of rate r and tolerance tau grants at most
// r*W + floor(tau*r) tokens; a consumer that comes back when told gets at least r*W - 1.
//
// All rate keys share the hash tag {rate} (queue::keys::rate_bucket), so a script touching
// several buckets stays in one Redis Cluster slot.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/resp.hpp"
#include "queue/script.hpp"

namespace budstikke::queue {

struct token_bucket {
  std::string key;          // keys::rate_bucket(name)
  double interval_us = 0;   // 1e6 / rate: the emission interval
  double tolerance_us = 0;  // how far ahead of the steady pace tokens may be taken (the burst)
};

// rate: tokens per second (> 0); burst: the tolerance as time (tokens = rate * burst).
token_bucket make_token_bucket(std::string key, double rate_per_second, std::chrono::microseconds burst);

// KEYS: the buckets. ARGV: tokens wanted (>= 1), now in microseconds since the epoch or "" for
// Redis's own clock (TIME: processes on several machines agree without synchronised clocks),
// then per bucket its interval and tolerance in microseconds.
// Returns {granted, wait_us, limiting}: when granted < wanted, wait_us is how long until every
// bucket has a token again and limiting the 1-based index of the bucket that waits longest
// (0 when everything asked was granted).
extern const script take_tokens_script;

// Appends one call of take_tokens_script to the pipeline. `now_us` is the injectable clock (tests).
void append_take_tokens(request& req, const std::vector<const token_bucket*>& buckets, std::int64_t wanted,
                        std::optional<std::int64_t> now_us = std::nullopt);

struct token_grant {
  std::int64_t granted = 0;
  std::chrono::microseconds wait{0};  // when granted < wanted: until the next token
  int limiting = -1;                  // 0-based index of the bucket that holds back; -1: none
};

// nullopt for an error reply or a reply of the wrong shape.
std::optional<token_grant> parse_token_grant(const redisReply* r);

}  // namespace budstikke::queue
