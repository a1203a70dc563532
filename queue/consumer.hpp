// What an engine shard asks Redis as a consumer of campaign streams, as request builders and
// typed answers: the engine builds pipelines with these and sees structs, never reply trees.
// A reply of the wrong shape (a buggy or hostile writer, a key of the wrong type) parses as an
// error with the reply's text, never as a crash.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/resp.hpp"
#include "queue/script.hpp"
#include "queue/schema.hpp"

namespace budstikke::queue {

// An error reply's text (or a description of an unexpected reply); nullopt for any other reply.
std::optional<std::string> error_of(const redisReply* r);

// ---- reading a campaign's stream ----

// One recipient entry as read from the stream (views into the reply).
struct stream_entry {
  std::string_view id;
  std::string_view to;
  std::string_view member;
  std::string_view data;
  std::uint32_t attempt = 0;  // sends that counted before this entry (an entry moved back for a retry)
  std::uint32_t paused = 0;   // answers before it that only asked for a pause
  std::int64_t deferred_ms = 0;  // its first transient answer (ms since the epoch); 0: none yet
  std::string_view origin;    // the portal's entry id, for an entry moved back for a retry
  std::string_view malformed;  // set by the mover for a retry it could not use: why
  bool well_formed = true;  // false: fields missing or of the wrong type (a buggy writer)
};

// Walks a list of entries ([[id, [f, v, ...]], ...]: XRANGE, XCLAIM, one stream of XREADGROUP).
std::size_t for_each_entry_in(const redisReply* entries, const std::function<void(const stream_entry&)>& on_entry);

// Walks an XREADGROUP reply: calls `on_entry(stream_key, entry)` for each entry. Returns the
// number of entries. Entries whose fields were deleted (nil) are passed with well_formed = false.
std::size_t for_each_entry(const redisReply* reply,
                           const std::function<void(std::string_view, const stream_entry&)>& on_entry);


// XREADGROUP GROUP budstikke CONSUMER COUNT n STREAMS stream >
void append_read(request& req, std::string_view consumer, std::size_t count, std::string_view stream);
// XREADGROUP ... COUNT n BLOCK ms STREAMS s1..sk >..>: waits up to `block` for new entries of any.
void append_read_blocking(request& req, std::string_view consumer, std::size_t count,
                          std::chrono::milliseconds block, const std::vector<std::string_view>& streams);

// ---- taking over pending entries (crash recovery) ----

struct pending_entry {
  std::string id;
  std::int64_t deliveries = 1;  // times it was read (XPENDING's delivery counter)
};
// XPENDING stream budstikke IDLE min_idle (cursor + count consumer: entries of `consumer` after
// `cursor` ("-" from the start, "(ID" after ID) idle at least `min_idle`.
void append_pending_of(request& req, std::string_view stream, std::string_view consumer,
                       std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count);
// nullopt for an error reply (error_of says which).
std::optional<std::vector<pending_entry>> parse_pending_of(const redisReply* r);

// XCLAIM stream budstikke consumer min_idle ids..., then HMGET inflight ids...: the entries and
// which of them carry an in-flight mark (they may have reached the relay).
void append_claim(request& req, std::string_view stream, std::string_view inflight_key, std::string_view consumer,
                  std::chrono::milliseconds min_idle, const std::vector<pending_entry>& entries);
// One flag per requested entry, in order: true when its in-flight mark is set.
std::vector<bool> parse_marks(const redisReply* r, std::size_t entries);

// ---- is anything left? (run --until-idle) ----

// One campaign's work left, read atomically (an entry moving between stream, pending list and
// retry set is never missed). KEYS: recipients, retry. ARGV: group. Returns {pending, retries,
// unread}.
extern const script work_left_script;
void append_work_left(request& req, const keys& k, std::string_view campaign_id);
struct work_left {
  std::int64_t pending = 0;  // read by any consumer and not yet recorded
  std::int64_t retries = 0;  // waiting in the campaign's retry set
  bool unread = false;       // entries in the stream no consumer has read yet
  bool any() const { return pending > 0 || retries > 0 || unread; }
};
// From the script's reply (a stream or group deleted by hand counts nothing left); nullopt for an
// error reply or one of the wrong shape: what is left is not known.
std::optional<work_left> parse_work_left(const redisReply* r);

// ---- consumers that died ----

struct consumer_info {
  std::string name;
  std::int64_t pending = 0;
};
// XINFO CONSUMERS stream budstikke
void append_consumers(request& req, std::string_view stream);
// Empty for an error or an unexpected reply.
std::vector<consumer_info> parse_consumers(const redisReply* r);
// EXISTS consumer-alive key
void append_consumer_alive(request& req, const keys& k, std::string_view consumer);
// False only for a clear 0: an unreadable reply does not declare anyone dead.
bool parse_alive(const redisReply* r);
// SET consumer-alive key <now ms> PX ttl
void append_heartbeat(request& req, const keys& k, std::string_view consumer, std::int64_t now_ms,
                      std::chrono::milliseconds ttl);

// ---- the registry of campaigns to serve ----

// ZRANGE registry 0 -1
void append_registry(request& req, const keys& k);
std::optional<std::vector<std::string>> parse_ids(const redisReply* r);
// HGETALL campaign hash: the definition, or why it is unusable.
void append_campaign(request& req, const keys& k, std::string_view id);
support::result<campaign_definition> parse_campaign(const redisReply* r, std::string_view id);
// HGET campaign hash state
void append_campaign_state(request& req, const keys& k, std::string_view id);
std::string parse_state(const redisReply* r);

// ---- recording outcomes (append_record_outcomes in campaign_store.hpp builds the call) ----

enum class record_count : std::uint8_t {
  not_counted,   // recorded before (a replayed batch), or a release of an in-flight mark
  counted,       // counted as given
  retry_failed,  // a retry whose entry is gone from the stream: recorded `failed` instead
};
struct record_result {
  bool finished = false;  // this batch completed the campaign
  std::vector<record_count> counted;  // one per record, in order
};
// nullopt for an error or a reply that does not have one count per record.
std::optional<record_result> parse_record_result(const redisReply* r, std::size_t records);

// ---- retries ----

struct moved_retries {
  std::int64_t moved = 0;    // due retries moved back into the stream now
  std::int64_t waiting = 0;  // still waiting in the retry set
  std::int64_t malformed = 0;  // unusable members put back as entries to be recorded `failed`
};
std::optional<moved_retries> parse_moved_retries(const redisReply* r);

}  // namespace budstikke::queue
