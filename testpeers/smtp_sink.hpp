// The project's own SMTP sink: a fast local peer for tests and benchmarks that accepts (and
// optionally stores) everything, with injectable faults.
//
// Storage (`maildir`): DIR/new/ holds one file per accepted message, named
// "<unix-time>.<pid>_<n>.budstikke-sink", whose content is exactly the message as received after
// dot-unstuffing (nothing added). DIR/recipients.log gets one line per accepted (message,
// recipient) pair: "<file name>\t<envelope recipient>\n", so a test can count, per recipient
// address, how many messages arrived.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

namespace budstikke::testpeers {

struct smtp_sink_options {
  std::string listen_host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: any free port (see smtp_sink::port())
  std::optional<std::string> maildir;
  // Share of messages answered "451 4.3.0": half of it at RCPT, half at the final dot.
  double transient_share = 0;
  // Share of messages after whose final dot the connection is closed without a reply.
  double drop_after_dot_share = 0;
  // Recipients containing this (when not empty) get "550 5.1.1".
  std::string reject_rcpt_containing;
  // Recipients containing this (when not empty) get "451 4.3.0" every time (counted in rcpt_transient).
  std::string defer_rcpt_containing;
  // Delay before each write of replies.
  std::chrono::milliseconds reply_delay{0};
  std::uint64_t seed = 1;
  std::uint64_t size_limit = 100ull * 1024 * 1024;  // advertised with SIZE, enforced
  std::chrono::milliseconds idle_timeout{300000};    // RFC 5321 4.5.3.2.7: 5 minutes

  // With a certificate and key (PEM files) the sink offers STARTTLS, or speaks TLS from the
  // first byte with implicit_tls.
  std::string tls_cert_file, tls_key_file;
  bool implicit_tls = false;
  // With a user name MAIL needs AUTH (PLAIN or LOGIN), offered only over TLS unless the sink
  // listens on a loopback address.
  std::string auth_user, auth_password;
};

class smtp_sink {
 public:
  // Binds and starts accepting at once. Throws std::system_error when it cannot listen or
  // cannot create the maildir, and boost::system::system_error for unusable TLS files.
  smtp_sink(boost::asio::any_io_executor ex, smtp_sink_options opt);
  ~smtp_sink();  // stop()
  smtp_sink(const smtp_sink&) = delete;
  smtp_sink& operator=(const smtp_sink&) = delete;

  std::uint16_t port() const;
  // Stops accepting and closes every connection (without replying).
  void stop();

  struct stats {
    std::uint64_t connections = 0;          // accepted TCP connections
    std::uint64_t messages = 0;             // messages accepted (250 after the dot)
    std::uint64_t recipients = 0;           // (message, recipient) pairs accepted
    std::uint64_t bytes = 0;                // unstuffed bytes of accepted messages
    std::uint64_t rcpt_transient = 0;       // 451 to RCPT
    std::uint64_t rcpt_rejected = 0;        // 550 to RCPT
    std::uint64_t dot_transient = 0;        // 451 to the final dot
    std::uint64_t dropped_after_dot = 0;    // connections dropped instead of answering the dot
    std::uint64_t tls_handshakes = 0;       // completed server TLS handshakes
    std::uint64_t tls_failures = 0;         // handshakes the client (or a timeout) broke off
    std::uint64_t auth_commands = 0;        // AUTH commands received, whatever their fate
    std::uint64_t mail_commands = 0;        // MAIL commands received, whatever their fate
  };
  // A snapshot; safe to call from another thread while the sink runs.
  stats statistics() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

// Blocking: runs a sink on its own io_context until SIGINT/SIGTERM, prints
// "listening on 127.0.0.1:PORT" on start (flushed) and a one-line summary of the counts on exit.
// Returns the process exit code (0, or 1 when it cannot start). Used by `budstikke sink smtp`.
int run_smtp_sink_until_signal(const smtp_sink_options& opt);

}  // namespace budstikke::testpeers
