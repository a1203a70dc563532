// What `enqueue`, `send`, `consent` and `suppress` share about what an operator types: the sender,
// an address in the form the engine sends to and looks up, the checks of ids and names; and the one
// round trip to Redis most of these commands make.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "queue/resp.hpp"
#include "queue/schema.hpp"
#include "support/result.hpp"

namespace budstikke::cli {

// Sets the e-mail sender of `def` from --from (an address, or `Name <address>`) and --from-name
// (the display name when --from carries none). On a problem prints "error: --from: ..." and
// returns false (the command exits with exit_usage).
bool sender_into(std::string_view from, std::string_view from_name, queue::campaign_definition& def);

// A recipient as the engine sends to it and as consent and suppression are keyed: a phone number
// in E.164 (national numbers in sms.default_region), an e-mail address with its IDN domain in
// xn-- form (the local part as given). Into `out`; the reason when it cannot be sent to.
std::optional<std::string> canonical_recipient(const config& cfg, queue::channel ch, std::string_view address,
                                               std::string& out);

// Member ids, categories, sources and reasons go into keys, fields and records: these throw
// config_error (exit 2, "error: ...") naming the option when one is empty (and required), longer
// than `max` bytes or holds a control character; and for a channel other than email or sms.
inline constexpr std::size_t max_category_bytes = 64;
inline constexpr std::size_t max_source_bytes = 200;
void check_text(std::string_view option, std::string_view value, std::size_t max, bool required = true);
queue::channel channel_of(std::string_view option, std::string_view value);

// Sends `req` on a connection of its own and waits: the replies, or the failure (Redis could not
// be reached, or an error reply, named) for "error: ..." and exit 1.
support::result<std::vector<queue::reply_ptr>> exec_once(const config& cfg, const queue::request& req);

}  // namespace budstikke::cli
