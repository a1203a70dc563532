// One Redis connection on the shard's event loop: hiredis parses RESP, Asio moves the bytes.
// A connection serves one pipeline at a time; each role in a shard (pulling, recording, control)
// owns its own connection, so no request ever waits behind another role's blocking read.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "queue/resp.hpp"
#include "support/pending_handlers.hpp"
#include "support/result.hpp"

namespace budstikke::queue {

struct redis_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  int database = 0;
  std::string username;  // an ACL user: AUTH username password; empty: AUTH password (the default user)
  std::string password;  // from the URL or BUDSTIKKE_REDIS_PASSWORD; never logged
  bool tls = false;      // rediss://: TLS, the certificate always verified
  std::string tls_ca_file;      // PEM; empty: the system's store
  std::string tls_cert_file;    // a client certificate to present (tls-auth-clients), with tls_key_file
  std::string tls_key_file;
  std::string tls_server_name;  // the name the certificate must carry (and SNI); empty: host
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds command_timeout{10000};
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{5000};
};

// redis://[[user]:password@]host[:port][/db], or rediss:// for TLS; the failure says which part
// is wrong and never repeats the password.
support::result<redis_config> parse_redis_url(std::string_view url);
std::string describe(const redis_config& cfg);  // host:port/db, no user, no password
// A failure of the connection to `cfg`'s server, as the CLI and the logs say it:
// "Redis at host:port/db: what went wrong".
support::failure redis_failure(const redis_config& cfg, std::error_code ec);

enum class redis_errc {
  protocol_error = 1,  // the server sent something that is not RESP
  timeout,             // no complete answer within the command timeout
  closed,              // connection closed by the server
  server_error,        // AUTH/SELECT refused at connect
};
std::error_code make_error_code(redis_errc e);

class connection {
 public:
  connection(boost::asio::any_io_executor ex, redis_config cfg);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Sends the pipeline and collects exactly req.commands() replies (errors from individual
  // commands come back as error replies, not as an error_code). Connects first when needed,
  // and loads every script (queue/script.hpp) on each new connection. A script call Redis
  // answers NOSCRIPT is sent again as EVAL in a second round trip and its reply put in its
  // place, so callers never see NOSCRIPT (resend_unknown_scripts says why that is safe).
  // On failure the connection is dropped; the next call reconnects. `extra_timeout` is added
  // for commands that block on the server (XREADGROUP BLOCK).
  boost::asio::awaitable<std::error_code> async_exec(
      const request& req, std::vector<reply_ptr>& replies,
      std::chrono::milliseconds extra_timeout = std::chrono::milliseconds(0));

  // Like async_exec, but on a connection-level failure waits (exponential backoff with jitter)
  // and tries again until `give_up_after` has passed. Only for idempotent pipelines.
  boost::asio::awaitable<std::error_code> async_exec_retrying(
      const request& req, std::vector<reply_ptr>& replies, std::chrono::milliseconds give_up_after);

  ~connection();

  bool connected() const { return socket_.is_open(); }
  void close();
  const redis_config& config() const { return cfg_; }

 private:
  struct tls_session;  // the TLS context and the stream over socket_ (rediss://)

  boost::asio::awaitable<std::error_code> async_connect();
  boost::asio::awaitable<std::error_code> async_handshake();
  boost::asio::awaitable<std::error_code> async_roundtrip(const request& req,
                                                          std::vector<reply_ptr>& replies);
  template <class Stream>
  boost::asio::awaitable<std::error_code> async_roundtrip_on(Stream& stream, const request& req,
                                                             std::vector<reply_ptr>& replies);
  void arm_deadline(std::chrono::milliseconds d);
  void disarm_deadline();

  redis_config cfg_;
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<tls_session> tls_;  // rediss:// only
  boost::asio::steady_timer deadline_;
  bool timed_out_ = false;
  reply_parser parser_;
  std::vector<char> read_buf_;
  std::uint64_t deadline_generation_ = 0;
  support::pending_handlers handlers_;  // last: destroyed first, so a late expiry finds us gone
};

}  // namespace budstikke::queue

template <>
struct std::is_error_code_enum<budstikke::queue::redis_errc> : std::true_type {};
