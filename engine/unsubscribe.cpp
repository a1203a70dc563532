#include "engine/unsubscribe.hpp"

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "support/log.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "templates/unsubscribe.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::engine {
namespace asio = boost::asio;

std::string_view to_string(withdrawal_status s) {
  switch (s) {
    case withdrawal_status::withdrawn: return "withdrawn";
    case withdrawal_status::already: return "already withdrawn";
    case withdrawal_status::invalid_token: return "invalid token";
    case withdrawal_status::unknown_campaign: return "unknown campaign";
    case withdrawal_status::no_secret: return "no unsubscribe secret configured";
    case withdrawal_status::redis_error: return "Redis error";
  }
  return "?";
}

asio::awaitable<withdrawal_result> apply_withdrawal(queue::connection& conn, const config& cfg, withdrawal w) {
  withdrawal_result result;
  auto ch = queue::parse_channel(w.channel);
  if (!ch || w.member.empty() || w.category.empty()) {
    result.status = withdrawal_status::invalid_token;
    result.detail = !ch ? fmt::format("unknown channel '{}'", w.channel)
                        : w.member.empty() ? "no member id" : "no category";
    result.what = std::move(w);
    co_return result;
  }
  queue::keys keys(cfg.key_prefix);
  auto field = w.category == "*" ? queue::channel_wide_consent_field(*ch) : queue::consent_field(*ch, w.category);
  queue::request req;
  queue::append_withdraw_consent(req, keys, w.member, field, queue::format_consent(false, support::now_rfc3339(), w.source));
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) {
    result.detail = queue::redis_failure(cfg.redis, ec).message;
  } else if (queue::is_error(replies[0].get())) {
    result.detail = std::string(queue::as_string(replies[0].get()));
  } else {
    result.status = queue::as_integer(replies[0].get()).value_or(0) == 1 ? withdrawal_status::withdrawn
                                                                         : withdrawal_status::already;
    log::info("consent withdrawn", {{"member", w.member}, {"channel", w.channel}, {"category", w.category},
                                    {"source", w.source}, {"result", to_string(result.status)}});
  }
  result.what = std::move(w);
  co_return result;
}

asio::awaitable<withdrawal_result> apply_unsubscribe_token(queue::connection& conn, const config& cfg,
                                                           std::string_view token, std::string_view source) {
  withdrawal_result result;
  if (!cfg.email.has_unsubscribe_secret()) {
    result.status = withdrawal_status::no_secret;
    result.detail = "set BUDSTIKKE_UNSUBSCRIBE_SECRET(_FILE), email.unsubscribe_secret_file or a list of keys "
                    "(email.unsubscribe_secrets_file)";
    co_return result;
  }
  auto fields = templates::verify_unsubscribe_token(cfg.email.unsubscribe_keys(), token);
  if (!fields || fields->member.empty() || !queue::valid_campaign_id(fields->campaign)) {
    result.status = withdrawal_status::invalid_token;
    result.detail = !fields ? "malformed or not signed with a configured key" : "the token names no member";
    co_return result;
  }
  // The token names the campaign; the consent withdrawn is that of the campaign's category.
  queue::keys keys(cfg.key_prefix);
  queue::request req;
  req.command("HGET", keys.campaign(fields->campaign), "category");
  std::vector<queue::reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) {
    result.detail = queue::redis_failure(cfg.redis, ec).message;
    co_return result;
  }
  if (queue::is_error(replies[0].get())) {
    result.detail = std::string(queue::as_string(replies[0].get()));
    co_return result;
  }
  if (queue::is_nil(replies[0].get())) {
    result.status = withdrawal_status::unknown_campaign;
    result.detail = fmt::format("campaign {} is not in Redis, so its category is unknown", fields->campaign);
    co_return result;
  }
  withdrawal w{fields->member, fields->channel, std::string(queue::as_string(replies[0].get())),
               fmt::format("{} (campaign {})", source, fields->campaign)};
  co_return co_await apply_withdrawal(conn, cfg, std::move(w));
}

}  // namespace budstikke::engine
