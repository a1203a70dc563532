#include "cli/message_options.hpp"

#include <algorithm>
#include <iostream>

#include <boost/asio/this_coro.hpp>
#include <fmt/format.h>

#include "adapters/sms_http/phone.hpp"
#include "queue/consumer.hpp"
#include "queue/redis.hpp"
#include "support/run_sync.hpp"
#include "templates/address.hpp"

namespace budstikke::cli {

bool sender_into(std::string_view from, std::string_view from_name, queue::campaign_definition& def) {
  if (from.empty()) {
    std::cerr << "error: --from is required for e-mail: an address, or 'Name <address>'\n";
    return false;
  }
  templates::sender s;
  if (auto problem = templates::parse_sender(from, s)) {
    std::cerr << fmt::format("error: --from: {}\n", *problem);
    return false;
  }
  if (!s.name.empty() && !from_name.empty()) {
    std::cerr << "error: --from-name: the sender's name is given twice, in --from and in --from-name; keep one\n";
    return false;
  }
  def.from_address = std::move(s.address);
  def.from_name = s.name.empty() ? std::string(from_name) : std::move(s.name);
  return true;
}

std::optional<std::string> canonical_recipient(const config& cfg, queue::channel ch, std::string_view address,
                                               std::string& out) {
  if (ch == queue::channel::sms) {
    if (auto problem = adapters::sms_http::normalise_phone(address, cfg.sms.default_region, out))
      return std::string(*problem);
    return std::nullopt;
  }
  bool needs_smtputf8 = false;
  if (auto problem = templates::prepare_email_address(address, out, needs_smtputf8)) return std::string(*problem);
  return std::nullopt;
}

void check_text(std::string_view option, std::string_view value, std::size_t max, bool required) {
  if (value.empty()) {
    if (required) throw config_error(fmt::format("{} is required", option));
    return;
  }
  if (value.size() > max) throw config_error(fmt::format("{}: longer than {} bytes", option, max));
  if (std::any_of(value.begin(), value.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    throw config_error(fmt::format("{}: control character", option));
}

queue::channel channel_of(std::string_view option, std::string_view value) {
  auto ch = queue::parse_channel(value);
  if (!ch) throw config_error(fmt::format("{} '{}': expected email or sms", option, value));
  return *ch;
}

support::result<std::vector<queue::reply_ptr>> exec_once(const config& cfg, const queue::request& req) {
  namespace asio = boost::asio;
  return support::run_sync([&]() -> asio::awaitable<support::result<std::vector<queue::reply_ptr>>> {
    queue::connection conn(co_await asio::this_coro::executor, cfg.redis);
    std::vector<queue::reply_ptr> replies;
    if (auto ec = co_await conn.async_exec(req, replies)) co_return queue::redis_failure(cfg.redis, ec);
    for (const auto& r : replies)
      if (auto e = queue::error_of(r.get())) co_return support::fail(*e);
    co_return replies;
  }());
}

}  // namespace budstikke::cli
