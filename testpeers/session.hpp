// Sans-io SMTP server session for the project's test sink: fed whatever bytes a read returned
// (several pipelined commands, a body and the next commands at once), it appends the replies to
// one output buffer and tells the I/O layer whether to go on, close or drop the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::testpeers {

// What the session asks its server: fault decisions and where accepted messages go.
class session_host {
 public:
  enum class dot_fate : std::uint8_t { accept, transient, drop };

  virtual bool rcpt_transient(std::string_view address) = 0;  // answer this RCPT with 451?
  virtual bool rcpt_rejected(std::string_view address) = 0;  // answer it with 550 5.1.1?
  virtual dot_fate on_dot() = 0;                             // what to do with a complete message
  // An accepted message: returns its queue id. `body` is unstuffed (empty unless keep_bodies()).
  virtual std::uint64_t on_message(std::string_view from, const std::vector<std::string>& rcpts,
                                   std::size_t rcpt_count, std::string_view body,
                                   std::size_t body_bytes) = 0;
  virtual bool keep_bodies() const = 0;
  virtual std::uint64_t size_limit() const = 0;

  // TLS and AUTH, off unless the host overrides them.
  virtual bool starttls_available() const { return false; }  // a certificate is configured
  virtual bool auth_required() const { return false; }       // MAIL only after AUTH
  // AUTH may be offered before TLS (the peer is a loopback address).
  virtual bool auth_in_clear_allowed() const { return false; }
  virtual bool check_credentials(std::string_view /*user*/, std::string_view /*password*/) { return false; }
  // Counted for the tests that prove a client sent no AUTH and no MAIL to an untrusted peer.
  enum class seen : std::uint8_t { mail, auth };
  virtual void on_seen(seen) {}

 protected:
  ~session_host() = default;
};

class server_session {
 public:
  static constexpr std::size_t max_command_line = 4096;
  static constexpr std::size_t max_recipients = 1000;

  enum class verdict : std::uint8_t {
    more,   // write the replies (if any), read again
    close,  // write the replies, then close (QUIT)
    drop,   // write the replies so far, then close without answering the last message
    start_tls,  // write the replies (the 220), drop the rest of the input, TLS handshake, on_tls_started()
  };

  explicit server_session(session_host& host);

  // Appends the greeting to out(). `tls`: the connection is encrypted from the start.
  void start(bool tls = false);
  verdict feed(std::string_view in);
  // The handshake after STARTTLS succeeded: a fresh session over TLS (RFC 3207 4.2).
  void on_tls_started();

  std::string& out() noexcept { return out_; }

 private:
  enum class state : std::uint8_t { command, data, done };
  enum class auth_state : std::uint8_t { none, plain, login_user, login_password };
  enum class data_state : std::uint8_t { line_start, in_line, after_dot, after_dot_cr };

  verdict on_command(std::string_view line);
  void on_auth(std::string_view args);
  void on_auth_response(std::string_view line);
  void finish_auth(std::string_view user, std::string_view password);
  bool auth_offered() const;
  verdict on_end_of_data();
  std::size_t feed_data(std::string_view in, bool& ended);
  void emit(const char* p, std::size_t n);
  void reset_transaction() noexcept;

  session_host& host_;
  std::string out_;
  std::string line_;  // a command line split across reads
  bool line_overflow_ = false;
  state state_ = state::command;
  data_state data_state_ = data_state::line_start;

  bool have_mail_ = false;
  std::string from_;
  std::vector<std::string> rcpts_;  // strings reused across messages
  std::size_t rcpt_count_ = 0;
  std::string body_;
  std::size_t body_bytes_ = 0;

  bool tls_ = false;
  bool authenticated_ = false;
  auth_state auth_state_ = auth_state::none;
  std::string login_user_;
};

}  // namespace budstikke::testpeers
