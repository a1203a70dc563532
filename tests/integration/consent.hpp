// Reading a member's consent record back, for the unsubscribe scenarios.
#pragma once

#include <string>

#include "queue/consent.hpp"
#include "tests/integration/e2e.hpp"

namespace budstikke::testing {

// The member's consent field for e-mail newsletters, or "(nil)".
inline std::string newsletter_consent(const redis_server& redis, const std::string& member) {
  std::string value = "(nil)";
  with_redis(redis, [&](queue::connection& conn) -> boost::asio::awaitable<void> {
    queue::request req;
    req.command("HGET", queue::consent_key(queue::keys(), member), "email:newsletter");
    std::vector<queue::reply_ptr> replies;
    auto ec = co_await conn.async_exec(req, replies);
    REQUIRE_FALSE(ec);
    if (!queue::is_nil(replies[0].get())) value = queue::as_string(replies[0].get());
  });
  return value;
}

}  // namespace budstikke::testing
