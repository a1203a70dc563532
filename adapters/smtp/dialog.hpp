// Sans-io SMTP client dialog: one connection's protocol logic, fed events and bytes, telling the
// I/O layer what to do next (in the spirit of Boost.Redis's exec_fsm). No sockets, no clocks.
//
// With PIPELINING (RFC 2920) each message costs one round trip: MAIL, RCPT and DATA go out in one
// write; after 354 the dot-stuffed body and its final dot go out together with MAIL/RCPT/DATA of
// the next message when one is waiting. Without PIPELINING the dialog is lock-step.
//
// Before the first MAIL the handshake may include STARTTLS (RFC 3207: the I/O layer does the TLS
// handshake when told, and the dialog forgets everything it heard in clear text) and AUTH PLAIN
// or LOGIN (RFC 4954), never in clear text unless the I/O layer says that is allowed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "adapters/delivery.hpp"
#include "adapters/smtp/reply.hpp"

namespace budstikke::adapters::smtp {

// What EHLO advertised.
struct capabilities {
  bool esmtp = false;  // EHLO accepted (else HELO)
  bool pipelining = false;
  bool size = false;           // SIZE advertised
  std::uint64_t size_limit = 0;  // 0: no fixed limit
  bool eightbitmime = false;
  bool smtputf8 = false;
  bool starttls = false;
  bool enhanced_status_codes = false;
  std::string auth;  // AUTH mechanisms as advertised, space separated ("PLAIN LOGIN")
};

// Where the dialog takes its next delivery from (the pool's FIFO queue); nullptr when none waits.
class delivery_source {
 public:
  virtual delivery* take() = 0;

 protected:
  ~delivery_source() = default;
};

enum class timeout_kind : std::uint8_t {
  command,  // greeting, EHLO, MAIL, RCPT, DATA, RSET, QUIT
  data,     // writing the body, waiting for the reply to the final dot
};

struct step {
  enum class kind : std::uint8_t {
    write,          // write all of `bytes`, then on_written() (or on_write_failed())
    read,           // read some bytes, then on_read() (or on_failure())
    wait_for_work,  // idle: wait until work may be waiting, then on_work(); or on_quit()
    close,          // close the socket; the dialog is over (see close_reason())
    start_tls,      // do the TLS client handshake, then on_tls_started() (or on_failure())
  };
  kind what = kind::close;
  timeout_kind timeout = timeout_kind::command;
  std::string_view bytes;  // for write; valid until the next call into the dialog
};

struct dialog_options {
  std::string helo_name = "localhost";
  std::size_t max_messages = 1000;  // per connection; then QUIT
  bool require_tls = false;  // STARTTLS before anything else, or no transaction at all
  std::string username;      // AUTH when not empty
  std::string password;
};

// What the I/O layer knows about a new connection.
struct connection_security {
  bool tls = false;                 // already encrypted (implicit TLS)
  bool clear_auth_allowed = false;  // configured, and the peer is a loopback address
};

class dialog {
 public:
  // `listener` gets each delivery's outcome exactly once, from inside the call that decided it.
  dialog(dialog_options opt, delivery_source& source, delivery_listener& listener);

  // A new connection (also after an earlier one closed): expect the greeting.
  step on_connected(connection_security security = {});
  // The TLS handshake after STARTTLS succeeded: EHLO again, over TLS.
  step on_tls_started();
  step on_read(std::string_view bytes);
  step on_written();
  // The write failed after `bytes_written` bytes: deliveries whose final dot was among them are
  // ambiguous, the others transient.
  step on_write_failed(error e, std::size_t bytes_written);
  // A read failed (EOF, reset, timeout): everything held is handed back.
  step on_failure(error e);
  // After wait_for_work: take work if some waits (else wait again).
  step on_work();
  // Idle and nothing more to do (idle timeout, pool closing): QUIT politely.
  step on_quit();

  const capabilities& caps() const noexcept { return caps_; }
  // True once the handshake (greeting, EHLO/HELO, STARTTLS, AUTH as configured) succeeded.
  bool established() const noexcept { return established_; }
  bool tls_active() const noexcept { return security_.tls; }
  // Why the dialog closed: empty after a polite QUIT.
  std::error_code close_reason() const noexcept { return close_reason_; }
  std::size_t messages_started() const noexcept { return started_; }
  // Deliveries held (sent or about to be sent, not yet handed back).
  std::size_t in_flight() const noexcept { return txn_count_; }

 private:
  enum class command : std::uint8_t {
    greeting, ehlo, helo, starttls, auth_plain, auth_login, auth_login_user, auth_login_password,
    mail, rcpt, data, dot, rset, quit
  };
  enum class phase : std::uint8_t { closed, handshake, tls_pending, ready, quitting };

  struct transaction {
    delivery* d = nullptr;
    std::uint8_t replies_due = 0;  // commands sent whose reply has not arrived
    bool decided = false;          // a failure reply already fixed the outcome (in d->reply)
    bool body_sent = false;        // the body and final dot are in a write (not an empty dot)
    bool dot_out = false;          // the final dot has been written
    std::size_t dot_end = 0;       // offset in out_ just past the final dot, while written
    outcome result = outcome::transient;
  };
  struct expected {
    command cmd;
    std::uint8_t txn;  // index into txns_ for mail/rcpt/data/dot
  };

  step next_step();
  void on_reply(const reply& r);
  void on_handshake_reply(command cmd, const reply& r);
  void on_txn_reply(command cmd, transaction& t, const reply& r);
  void parse_ehlo(const reply& r);
  void after_hello();  // STARTTLS, AUTH or ready
  void on_auth_reply(command cmd, const reply& r);
  void become_ready();

  bool start_next_transaction();  // takes a delivery and writes its envelope; false if none
  bool check_delivery(delivery& d);  // local refusals: bad address, SIZE
  void write_envelope(std::uint8_t index, bool lock_step);
  void write_command(command cmd, std::uint8_t index);
  void write_body(transaction& t);
  std::uint8_t new_transaction(delivery& d);
  void decide(transaction& t, const reply& r);
  void decide_local(transaction& t, outcome o, std::string_view reason);
  void finish_if_done(std::uint8_t index);
  void hand_back(transaction& t);
  void fail_connection(error e);
  void expect(command cmd, std::uint8_t txn = 0);
  bool can_start_more() const noexcept;

  dialog_options opt_;
  delivery_source& source_;
  delivery_listener& listener_;

  reply_parser parser_;
  std::string out_;  // the next write; reused, so steady state does not allocate
  capabilities caps_;
  phase phase_ = phase::closed;
  bool established_ = false;
  bool need_rset_ = false;  // a transaction failed before its final dot
  bool out_has_secret_ = false;  // out_ holds credentials: wipe it once written
  connection_security security_;
  std::error_code close_reason_;
  std::size_t started_ = 0;

  // Replies expected, in the order the commands were written (a small ring).
  static constexpr std::size_t max_expected = 16;
  std::array<expected, max_expected> expected_{};
  std::size_t expected_head_ = 0, expected_count_ = 0;
  std::size_t expected_sent_ = 0;  // of those, the ones already written: only they can be answered

  // At most two transactions: one waiting for its dot reply, the next one's envelope.
  static constexpr std::size_t max_txns = 2;
  std::array<transaction, max_txns> txns_{};
  std::size_t txn_head_ = 0, txn_count_ = 0;
  bool out_has_body_ = false;
};

}  // namespace budstikke::adapters::smtp
