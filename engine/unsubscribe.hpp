// Applying a withdrawal of consent: from a signed unsubscribe token (the List-Unsubscribe link
// of an e-mail) or named directly. Both `budstikke consent withdraw` (cli/consent.hpp) and the
// admin port's `POST /unsubscribe` come here. Idempotent: a second application changes nothing.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "config/config.hpp"
#include "queue/redis.hpp"

namespace budstikke::engine {

struct withdrawal {
  std::string member;
  std::string channel;   // email | sms
  std::string category;  // e.g. newsletter; "*" = every category of the channel
  std::string source;    // recorded with the withdrawal: who or what asked for it
};

enum class withdrawal_status {
  withdrawn,         // written now
  already,           // it was withdrawn before: nothing changed
  invalid_token,     // malformed, not signed with the configured secret, or naming no member
  unknown_campaign,  // the token's campaign is gone, so its category is unknown
  no_secret,         // no unsubscribe secret configured: tokens cannot be checked
  redis_error,
};

struct withdrawal_result {
  withdrawal_status status = withdrawal_status::redis_error;
  withdrawal what;        // filled once known
  std::string detail;     // for errors
};

// Writes the withdrawal for (member, channel, category).
boost::asio::awaitable<withdrawal_result> apply_withdrawal(queue::connection& conn, const config& cfg, withdrawal w);

// Verifies the token, finds its campaign's category and withdraws that category's consent for
// the channel. `source` is recorded with it (e.g. "one-click unsubscribe").
boost::asio::awaitable<withdrawal_result> apply_unsubscribe_token(queue::connection& conn, const config& cfg,
                                                                  std::string_view token, std::string_view source);

std::string_view to_string(withdrawal_status s);

}  // namespace budstikke::engine
