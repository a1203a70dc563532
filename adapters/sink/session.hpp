// Sans-io SMTP server session for the project's test sink: fed whatever bytes a read returned
// (several pipelined commands, a body and the next commands at once), it appends the replies to
// one output buffer and tells the I/O layer whether to go on, close or drop the connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace budstikke::adapters::sink {

// What the session asks its server: fault decisions and where accepted messages go.
class session_host {
 public:
  enum class dot_fate : std::uint8_t { accept, transient, drop };

  virtual bool rcpt_transient() = 0;                        // answer this RCPT with 451?
  virtual bool rcpt_rejected(std::string_view address) = 0;  // answer it with 550 5.1.1?
  virtual dot_fate on_dot() = 0;                             // what to do with a complete message
  // An accepted message: returns its queue id. `body` is unstuffed (empty unless keep_bodies()).
  virtual std::uint64_t on_message(std::string_view from, const std::vector<std::string>& rcpts,
                                   std::size_t rcpt_count, std::string_view body,
                                   std::size_t body_bytes) = 0;
  virtual bool keep_bodies() const = 0;
  virtual std::uint64_t size_limit() const = 0;

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
  };

  explicit server_session(session_host& host);

  // Appends the greeting to out().
  void start();
  verdict feed(std::string_view in);

  std::string& out() noexcept { return out_; }

 private:
  enum class state : std::uint8_t { command, data, done };
  enum class data_state : std::uint8_t { line_start, in_line, after_dot, after_dot_cr };

  verdict on_command(std::string_view line);
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
};

}  // namespace budstikke::adapters::sink
