// Consent and suppression, as portals write them and as the engine reads them at send time.
// docs/redis-schema.md ("Consent and suppression") describes the same for portal developers.
//
//   budstikke:consent:{MEMBER}     HASH  "<channel>:<category>" -> "granted|<time>|<source>"
//                                        or "withdrawn|<time>|<source>"; "<channel>:*" covers
//                                        every category of the channel
//   budstikke:suppressed:<channel> HASH  address (e-mail lower-cased, phone in E.164) -> "<reason>|<time>"
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "queue/resp.hpp"
#include "queue/schema.hpp"

namespace budstikke::queue {

std::string consent_key(const keys& k, std::string_view member);
std::string suppression_key(const keys& k, channel ch);
std::string consent_field(channel ch, std::string_view category);
std::string channel_wide_consent_field(channel ch);
// The form an address takes in the suppression hash: e-mail addresses lower-cased.
std::string suppression_member(channel ch, std::string_view address);

struct consent_record {
  bool granted = false;
  std::string_view at;      // when it was given or withdrawn
  std::string_view source;  // who or what recorded it (portal, unsubscribe link, ...)
};
// Parses "granted|time|source" / "withdrawn|time|source"; nullopt if malformed.
std::optional<consent_record> parse_consent(std::string_view value);
std::string format_consent(bool granted, std::string_view at, std::string_view source);

// A suppression entry's value, "<reason>|<time>", and back (a value without '|' is all reason).
std::string format_suppression(std::string_view reason, std::string_view at);
struct suppression_record {
  std::string_view reason;
  std::string_view at;
};
suppression_record parse_suppression(std::string_view value);

// The send-time decision for one message. `specific` and `channel_wide` are the two consent
// fields (nil when absent), `suppressed` the suppression entry (nil when absent). Returns the
// reason to skip, or nullopt to send. The category-specific record wins over the channel-wide one.
std::optional<std::string> consent_problem(const redisReply* specific, const redisReply* channel_wide,
                                           const redisReply* suppressed, bool consent_required,
                                           bool have_member);

// Records a withdrawal unless one is recorded already, so applying the same unsubscribe twice
// keeps the first time and source. KEYS: the consent key. ARGV: field, value ("withdrawn|...").
// Returns 1 when it wrote the withdrawal, 0 when the field was withdrawn before.
extern const script withdraw_consent_script;
// Builds that call for one member: `field` is consent_field or channel_wide_consent_field,
// `value` a format_consent(false, ...).
void append_withdraw_consent(request& req, const keys& k, std::string_view member, std::string_view field,
                             std::string_view value);

// Records a grant (`value` a format_consent(true, ...)), replacing whatever was recorded, in one
// MULTI: 4 replies, the last an array of {the record replaced (nil: none), HSET's count}.
void append_grant_consent(request& req, const keys& k, std::string_view member, std::string_view field,
                          std::string_view value);

// The same from the replies of append_consent_lookup: `consent` is the HMGET's reply, or null
// when the consent store was not read.
std::optional<std::string> lookup_problem(const redisReply* consent, const redisReply* suppressed,
                                          bool consent_required, bool have_member);

// Appends HMGET consent + HGET suppression for one message: 2 commands, answered in that order;
// without `read_consent` only the HGET. `consent_problem` takes nil for records not read.
void append_consent_lookup(request& req, const keys& k, channel ch, std::string_view category,
                           std::string_view member, std::string_view address, bool read_consent = true);

}  // namespace budstikke::queue
