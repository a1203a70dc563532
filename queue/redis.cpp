#include "queue/redis.hpp"

#include <charconv>
#include <optional>
#include <random>

#include <boost/asio/connect.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "support/backoff.hpp"
#include "support/tls.hpp"
#include "support/url.hpp"

namespace budstikke::queue {
namespace asio = boost::asio;
using asio::as_tuple;
using asio::use_awaitable;

namespace {

class redis_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "budstikke.redis"; }
  std::string message(int ev) const override {
    switch (static_cast<redis_errc>(ev)) {
      case redis_errc::protocol_error: return "Redis protocol error";
      case redis_errc::timeout: return "Redis did not answer in time";
      case redis_errc::closed: return "Redis closed the connection";
      case redis_errc::server_error: return "Redis refused AUTH or SELECT";
    }
    return "unknown Redis error";
  }
};

}  // namespace

std::error_code make_error_code(redis_errc e) {
  static const redis_category_impl category;
  return {static_cast<int>(e), category};
}

support::result<redis_config> parse_redis_url(std::string_view url) {
  redis_config cfg;
  const std::string_view whole = url;
  if (url.starts_with("rediss://")) {
    cfg.tls = true;
    url.remove_prefix(9);
  } else if (url.starts_with("redis://")) {
    url.remove_prefix(8);
  } else {
    return support::fail(
        fmt::format("Redis URL '{}' must start with redis:// (or rediss:// for TLS)", support::redact_url(whole)));
  }
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    auto userinfo = url.substr(0, at);
    // As redis-cli reads it: user:password, :password, or a password alone.
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      cfg.username = std::string(userinfo.substr(0, colon));
      cfg.password = std::string(userinfo.substr(colon + 1));
    } else {
      cfg.password = std::string(userinfo);
    }
    url.remove_prefix(at + 1);
  }
  if (auto slash = url.find('/'); slash != std::string_view::npos) {
    auto db = url.substr(slash + 1);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), cfg.database);
      if (ec != std::errc() || p != db.data() + db.size() || cfg.database < 0) {
        return support::fail(fmt::format("Redis URL: database '{}' is not a number", db));
      }
    }
    url = url.substr(0, slash);
  }
  if (auto colon = url.rfind(':'); colon != std::string_view::npos) {
    auto port = url.substr(colon + 1);
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535) {
      return support::fail(fmt::format("Redis URL: port '{}' is not a port number", port));
    }
    cfg.port = static_cast<std::uint16_t>(value);
    url = url.substr(0, colon);
  }
  if (url.empty()) {
    return support::fail("Redis URL has no host");
  }
  cfg.host = std::string(url);
  return cfg;
}

std::string describe(const redis_config& cfg) {
  return fmt::format("{}:{}/{}", cfg.host, cfg.port, cfg.database);
}

support::failure redis_failure(const redis_config& cfg, std::error_code ec) {
  return support::failure{ec, fmt::format("Redis at {}: {}", describe(cfg), ec.message())};
}

struct connection::tls_session {
  explicit tls_session(asio::ssl::context c) : context(std::move(c)) {}
  asio::ssl::context context;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket&>> stream;  // a fresh one per connection
};

connection::connection(asio::any_io_executor ex, redis_config cfg)
    : cfg_(std::move(cfg)), socket_(ex), deadline_(ex), read_buf_(64 * 1024), handlers_(ex) {
  if (cfg_.tls) {
    if (cfg_.tls_server_name.empty()) cfg_.tls_server_name = cfg_.host;
    tls_ = std::make_unique<tls_session>(support::make_tls_client_context(
        {cfg_.tls_ca_file, cfg_.tls_cert_file, cfg_.tls_key_file, true}, "Redis at " + describe(cfg_)));
  }
}

connection::~connection() = default;

void connection::close() {
  boost::system::error_code ignored;
  socket_.close(ignored);
  if (tls_) tls_->stream.reset();
  parser_.reset();
}

// The expiry handler may already be queued (with success) when the operation finishes in time:
// cancel() cannot take it back. The generation tells it that its operation is over, and the
// guard that the connection itself may be gone.
void connection::arm_deadline(std::chrono::milliseconds d) {
  timed_out_ = false;
  deadline_.expires_after(d);
  deadline_.async_wait(handlers_.wrap([this, armed = ++deadline_generation_](boost::system::error_code ec) {
    if (ec || armed != deadline_generation_) return;  // cancelled, or its operation finished in time
    timed_out_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
  }));
}

void connection::disarm_deadline() {
  ++deadline_generation_;
  deadline_.cancel();
}

asio::awaitable<std::error_code> connection::async_connect() {
  close();
  asio::ip::tcp::resolver resolver(socket_.get_executor());
  auto [rec, endpoints] = co_await resolver.async_resolve(cfg_.host, std::to_string(cfg_.port),
                                                          as_tuple(use_awaitable));
  if (rec) co_return rec;
  arm_deadline(cfg_.connect_timeout);
  auto [cec, ep] = co_await asio::async_connect(socket_, endpoints, as_tuple(use_awaitable));
  disarm_deadline();
  if (cec) {
    close();
    co_return timed_out_ ? make_error_code(redis_errc::timeout) : std::error_code(cec);
  }
  socket_.set_option(asio::ip::tcp::no_delay(true));
  if (tls_) {
    if (auto hec = co_await async_handshake()) {
      close();
      co_return hec;
    }
  }

  request hello;
  // A user of its own (an ACL) authenticates with its name; a password alone is the default user's.
  if (!cfg_.username.empty()) hello.command("AUTH", cfg_.username, cfg_.password);
  else if (!cfg_.password.empty()) hello.command("AUTH", cfg_.password);
  if (cfg_.database != 0) hello.command("SELECT", cfg_.database);
  const std::size_t handshake = hello.commands();
  // Loaded on every new connection: after a restart or a failover this is a server that may
  // never have seen them. A refused load (an ACL without SCRIPT) is no error: the calls then
  // fall back to EVAL.
  for (const script* s : all_scripts()) hello.command("SCRIPT", "LOAD", s->source);
  std::vector<reply_ptr> replies;
  arm_deadline(cfg_.command_timeout);
  auto ec = co_await async_roundtrip(hello, replies);
  disarm_deadline();
  if (ec) {
    close();
    co_return timed_out_ ? make_error_code(redis_errc::timeout) : ec;
  }
  for (std::size_t i = 0; i < handshake; ++i) {
    if (is_error(replies[i].get())) {
      close();
      co_return make_error_code(redis_errc::server_error);
    }
  }
  co_return std::error_code{};
}

// Verifies the certificate against tls_server_name (or the host) before a byte of AUTH is sent.
asio::awaitable<std::error_code> connection::async_handshake() {
  auto& stream = tls_->stream.emplace(socket_, tls_->context);
  if (!support::set_tls_peer_name(stream.native_handle(), cfg_.tls_server_name, true))
    co_return std::make_error_code(std::errc::invalid_argument);
  arm_deadline(cfg_.connect_timeout);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, as_tuple(use_awaitable));
  disarm_deadline();
  if (!hec) co_return std::error_code{};
  co_return timed_out_ ? make_error_code(redis_errc::timeout) : support::tls_handshake_error(stream.native_handle(), hec);
}

asio::awaitable<std::error_code> connection::async_roundtrip(const request& req,
                                                             std::vector<reply_ptr>& replies) {
  if (tls_) co_return co_await async_roundtrip_on(*tls_->stream, req, replies);
  co_return co_await async_roundtrip_on(socket_, req, replies);
}

// The same exchange on the plain socket or on the TLS stream over it.
template <class Stream>
asio::awaitable<std::error_code> connection::async_roundtrip_on(Stream& stream, const request& req,
                                                                std::vector<reply_ptr>& replies) {
  auto [wec, written] = co_await asio::async_write(stream, asio::buffer(req.payload()),
                                                   as_tuple(use_awaitable));
  if (wec) co_return wec;
  while (replies.size() < req.commands()) {
    bool protocol_error = false;
    while (replies.size() < req.commands()) {
      auto r = parser_.next(protocol_error);
      if (protocol_error) co_return make_error_code(redis_errc::protocol_error);
      if (!r) break;
      replies.push_back(std::move(r));
    }
    if (replies.size() == req.commands()) break;
    auto [rec, n] = co_await stream.async_read_some(asio::buffer(read_buf_), as_tuple(use_awaitable));
    if (rec == asio::error::eof || rec == asio::ssl::error::stream_truncated)
      co_return make_error_code(redis_errc::closed);
    if (rec) co_return rec;
    if (!parser_.feed(read_buf_.data(), n)) co_return make_error_code(redis_errc::protocol_error);
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> connection::async_exec(const request& req,
                                                        std::vector<reply_ptr>& replies,
                                                        std::chrono::milliseconds extra_timeout) {
  replies.clear();
  if (req.empty()) co_return std::error_code{};
  if (!socket_.is_open()) {
    if (auto ec = co_await async_connect()) co_return ec;
  }
  arm_deadline(cfg_.command_timeout + extra_timeout);
  auto ec = co_await async_roundtrip(req, replies);
  disarm_deadline();
  if (!ec && !req.script_calls().empty()) {
    std::vector<std::size_t> positions;
    if (auto again = resend_unknown_scripts(req, replies, positions); !again.empty()) {
      std::vector<reply_ptr> answers;
      arm_deadline(cfg_.command_timeout);
      ec = co_await async_roundtrip(again, answers);
      disarm_deadline();
      if (!ec)
        for (std::size_t i = 0; i < positions.size(); ++i) replies[positions[i]] = std::move(answers[i]);
    }
  }
  if (ec) {
    if (timed_out_) ec = make_error_code(redis_errc::timeout);
    close();
    replies.clear();
  }
  co_return ec;
}

asio::awaitable<std::error_code> connection::async_exec_retrying(const request& req,
                                                                 std::vector<reply_ptr>& replies,
                                                                 std::chrono::milliseconds give_up_after) {
  auto give_up = std::chrono::steady_clock::now() + give_up_after;
  // Jittered: a fleet of shards reconnecting after a Redis restart must not arrive in step.
  const support::backoff backoff{
      .initial = cfg_.backoff_min, .cap = cfg_.backoff_max, .spread = support::jitter::equal};
  thread_local std::mt19937_64 random{std::random_device{}()};
  asio::steady_timer timer(socket_.get_executor());
  for (std::uint32_t attempt = 1;; ++attempt) {
    auto ec = co_await async_exec(req, replies);
    if (!ec || std::chrono::steady_clock::now() >= give_up) co_return ec;
    timer.expires_after(backoff.delay(attempt, random()));
    co_await timer.async_wait(as_tuple(use_awaitable));
  }
}

}  // namespace budstikke::queue
