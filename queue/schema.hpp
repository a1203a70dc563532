// The Redis schema: the contract between portal backends (any language) and the engine.
// docs/redis-schema.md describes the same thing for portal developers; keep them in step.
//
// Every key of one campaign carries the campaign id as a hash tag ({id}) so that a campaign
// lives in one Redis Cluster slot and its Lua scripts stay legal there.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "queue/script.hpp"
#include "support/result.hpp"

namespace budstikke::queue {

inline constexpr std::string_view default_key_prefix = "budstikke:";
inline constexpr std::string_view consumer_group = "budstikke";

class keys {
 public:
  explicit keys(std::string prefix = std::string(default_key_prefix)) : prefix_(std::move(prefix)) {}

  // HASH: the campaign's definition, state and total.
  std::string campaign(std::string_view id) const { return prefix_ + "campaign:{" + std::string(id) + "}"; }
  // STREAM: one entry per recipient, consumed through consumer group `budstikke`.
  std::string recipients(std::string_view id) const { return campaign(id) + ":recipients"; }
  // HASH: counts by final state (sent, failed, skipped, ambiguous).
  std::string counts(std::string_view id) const { return campaign(id) + ":counts"; }
  // STREAM: one entry per recipient that did not end `sent`, with its reason.
  std::string outcomes(std::string_view id) const { return campaign(id) + ":outcomes"; }
  // HASH: entry id -> ms since the epoch, for entries put on the wire and not yet recorded.
  // What is still here after a crash may have reached the relay (RFC 1047).
  std::string inflight(std::string_view id) const { return campaign(id) + ":inflight"; }
  // ZSET: transient failures waiting for their retry (member = JSON payload, score = due time in
  // ms since the epoch, Redis's clock). Moved back into the recipients stream when due.
  std::string retry(std::string_view id) const { return campaign(id) + ":retry"; }
  // STREAM: dead letters, one per recipient recorded `failed`, with what is needed to requeue it.
  std::string dead(std::string_view id) const { return campaign(id) + ":dead"; }
  // STRING with a TTL: exists while the consumer (one engine shard) is alive.
  std::string consumer_alive(std::string_view consumer) const { return prefix_ + "consumer:" + std::string(consumer); }
  // ZSET: the registry of campaigns the engine serves (member = id, score = priority).
  std::string registry() const { return prefix_ + "campaigns"; }
  // ZSET: every campaign ever enqueued (member = id, score = creation time in ms), for `status`.
  std::string index() const { return prefix_ + "campaigns:all"; }
  // STREAM (capped): one event per recorded outcome of every campaign, for portals.
  std::string events() const { return prefix_ + "events"; }
  // STRING with a TTL: a rate limit's token bucket (GCRA theoretical arrival time, microseconds
  // since the epoch; queue/rate_limit.hpp). One hash tag for every bucket, so that a script
  // taking from several buckets at once stays in one Redis Cluster slot.
  std::string rate_bucket(std::string_view name) const { return prefix_ + "{rate}:" + std::string(name); }
  // HASH: field "<consumer>\t<kind>\t<path>" -> JSON {kind, path, consumer, state (up or
  // suspended), since_ms, next_probe_ms, reason, at_ms}: each shard's view of each relay and of
  // the SMS gateway (queue/paths.hpp). A stopped shard's fields go with it.
  std::string paths() const { return prefix_ + "paths"; }
  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
};

enum class channel : std::uint8_t { email, sms };
std::optional<channel> parse_channel(std::string_view s);
std::string_view to_string(channel c);

// Final states of a recipient. Their names are the field names in the counts hash.
enum class final_state : std::uint8_t { sent, failed, skipped, ambiguous };
std::string_view to_string(final_state s);
inline constexpr final_state all_final_states[] = {final_state::sent, final_state::failed,
                                                   final_state::skipped, final_state::ambiguous};

inline constexpr int min_priority = 0;
inline constexpr int max_priority = 9;
inline constexpr std::size_t max_id_length = 64;

// Campaign ids appear in key names and headers: [A-Za-z0-9._-], 1..64 characters.
bool valid_campaign_id(std::string_view id);

// The campaign hash's fields.
struct campaign_definition {
  std::string id;
  channel kind = channel::email;
  std::string category = "newsletter";
  std::string tenant = "default";
  int priority = 5;
  std::string from_address;   // envelope sender and From: address (e-mail); sender id (SMS)
  std::string from_name;      // From: display name (e-mail)
  std::string state = "active";  // active | paused | cancelled | done
  std::optional<std::int64_t> total;  // set once every recipient has been added
  std::string created_at;     // RFC 3339 UTC
  std::optional<int> sms_max_segments;  // overrides the engine's sms.max_segments (1..255)
  // Template sources, copied in at enqueue time: subject, text, html, sms.
  std::map<std::string, std::string, std::less<>> templates;
  // Partials by name, copied in at enqueue time.
  std::map<std::string, std::string, std::less<>> partials;

  // Flat HSET field/value pairs, as documented.
  std::vector<std::pair<std::string, std::string>> to_fields() const;
  // From HGETALL's field/value pairs; an error names the field and what is wrong with it.
  static support::result<campaign_definition> from_fields(
      std::string_view id, const std::vector<std::pair<std::string_view, std::string_view>>& fields);
};

inline constexpr std::string_view template_field_prefix = "template:";
inline constexpr std::string_view partial_field_prefix = "partial:";

// Fields of a recipient stream entry.
inline constexpr std::string_view field_to = "to";        // address or phone number (required)
inline constexpr std::string_view field_member = "id";    // member id (optional, used in logs)
inline constexpr std::string_view field_data = "data";    // JSON object of template variables
// Bounds of a recipient entry's fields, checked at enqueue and again when the engine reads an
// entry (a portal may write the stream directly): memory per in-flight message stays bounded.
inline constexpr std::size_t max_to_bytes = 320;         // RFC 5321's 254-octet path, or a phone number, with room
inline constexpr std::size_t max_member_id_bytes = 256;
inline constexpr std::size_t max_data_bytes = 64 * 1024;
// nullopt when `to`, the member id and the data fit their bounds; else the reason, naming the field.
std::optional<std::string> recipient_size_problem(std::string_view to, std::string_view member, std::string_view data);
// Written by the engine on entries it moves back from the retry set; a portal never sets them.
inline constexpr std::string_view field_attempt = "attempt";  // sends that counted so far
inline constexpr std::string_view field_paused = "paused";    // answers that only asked for a pause
inline constexpr std::string_view field_deferred = "deferred";  // the first transient answer, ms since the epoch
inline constexpr std::string_view field_origin = "origin";    // the id of the portal's entry
// Written by the mover in place of a retry-set member it cannot use: why; the entry is recorded `failed`.
inline constexpr std::string_view field_malformed = "malformed";

// The scripts over the schema (queue/scripts/NAME.lua, called with request::eval).
//
// Records a batch of outcomes of one campaign atomically and idempotently.
// KEYS: recipients, counts, outcomes, campaign, inflight, retry, dead. ARGV: group, now, then
// `record_arity` per record: entry id, state, member id, reason, flags, attempts, reply, retry
// delay ms, paused, deferred (ms since the epoch of the first transient answer; 0: none). An entry counts only if XACK removed it from the pending list, so replaying a
// batch after a lost reply never counts twice. State `release` only clears the in-flight mark
// (the entry stays pending: it was handed back, not sent). State `retry` puts the entry's fields
// into the retry set, due after the delay (Redis's clock), and counts it in `retrying`. State
// `failed` also writes a dead letter. Flag `r`: the entry was resent after an engine stopped while
// it was on the wire (counted in `resent`). Returns {recorded, done, counted}: done = 1 if this
// call completed the campaign; counted has one number per record: 0 not counted (already
// recorded, or a release), 1 counted as given, 2 a retry recorded `failed` instead because its
// entry is no longer in the stream.
inline constexpr std::size_t record_arity = 10;
extern const script record_outcomes_script;

// Appends a batch of events to the capped events stream in one call (one reply, not one per
// event). KEYS: events. ARGV: max length (XADD MAXLEN ~), at (RFC 3339), then 8 per event:
// campaign, entry, member, channel, state, reason, reply, attempt. Returns the events added.
extern const script append_events_script;
inline constexpr std::size_t event_args = 8;

// Moves due retries back into the recipients stream, at most ARGV[1] per call, as new entries
// with the original fields plus `attempt`, `paused`, `deferred` and `origin`. KEYS: retry, recipients, counts.
// A member that is not what record_outcomes writes (not JSON, an odd number of field names and
// values, one that is not a string) goes back as an entry with `malformed` set to the reason and
// what of to, id, data and origin it still holds, so that the engine records it `failed`; it never
// stops the others. Returns {moved, still waiting, malformed}.
extern const script move_due_retries_script;

// Requeues dead letters (ARGV: their ids) into the recipients stream as fresh entries (attempt 0),
// removing them from the dead stream and from `failed`; a `done` campaign becomes `active` again.
// A dead letter already gone is skipped, so a repeated call requeues nothing twice.
// KEYS: dead, recipients, counts, campaign. Returns {requeued, campaign state}; an error reply for
// a campaign that does not exist or is cancelled.
extern const script requeue_dead_script;

// Moves a campaign from one of the allowed states to a target state atomically (pause, resume,
// cancel). KEYS: campaign. ARGV: target state, now (RFC 3339, written as `<target>_at`), then the
// states it may move from. Returns the state it found (it moved only if that is one of the
// allowed), or nil when the campaign does not exist.
extern const script transition_script;

}  // namespace budstikke::queue
