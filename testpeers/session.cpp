#include "testpeers/session.hpp"

#include <charconv>
#include <cstring>

#include "support/base64.hpp"

namespace budstikke::testpeers {
namespace {

char upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

bool starts_with_nocase(std::string_view s, std::string_view prefix) noexcept {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (upper(s[i]) != prefix[i]) return false;
  }
  return true;
}

// The address between <...> after "MAIL FROM:" / "RCPT TO:", and whatever parameters follow.
bool parse_path(std::string_view arg, std::string_view& address, std::string_view& params) noexcept {
  while (!arg.empty() && arg.front() == ' ') arg.remove_prefix(1);
  if (arg.empty() || arg.front() != '<') return false;
  std::size_t close = arg.find('>');
  if (close == std::string_view::npos) return false;
  address = arg.substr(1, close - 1);
  params = arg.substr(close + 1);
  return true;
}

std::uint64_t size_param(std::string_view params) noexcept {
  for (std::size_t pos = 0; pos < params.size();) {
    while (pos < params.size() && params[pos] == ' ') ++pos;
    std::size_t end = params.find(' ', pos);
    std::string_view p = params.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (starts_with_nocase(p, "SIZE=")) {
      std::uint64_t v = 0;
      std::from_chars(p.data() + 5, p.data() + p.size(), v);
      return v;
    }
    if (end == std::string_view::npos) break;
    pos = end;
  }
  return 0;
}

}  // namespace

server_session::server_session(session_host& host) : host_(host) {
  out_.reserve(4096);
  line_.reserve(512);
}

void server_session::start(bool tls) {
  tls_ = tls;
  out_.append("220 budstikke-sink ESMTP\r\n");
}

void server_session::on_tls_started() {
  tls_ = true;
  authenticated_ = false;
  auth_state_ = auth_state::none;
  line_.clear();
  line_overflow_ = false;
  reset_transaction();
}

bool server_session::auth_offered() const {
  return host_.auth_required() && (tls_ || host_.auth_in_clear_allowed());
}

void server_session::reset_transaction() noexcept {
  have_mail_ = false;
  from_.clear();
  rcpt_count_ = 0;
  body_.clear();
  body_bytes_ = 0;
}

server_session::verdict server_session::feed(std::string_view in) {
  while (!in.empty()) {
    if (state_ == state::done) return verdict::close;
    if (state_ == state::data) {
      bool ended = false;
      in.remove_prefix(feed_data(in, ended));
      if (ended) {
        verdict v = on_end_of_data();
        if (v != verdict::more) return v;
      }
      continue;
    }
    const void* nl = std::memchr(in.data(), '\n', in.size());
    std::size_t n = nl ? static_cast<const char*>(nl) - in.data() + 1 : in.size();
    if (!line_overflow_) {
      if (line_.size() + n > max_command_line) {
        line_overflow_ = true;  // discard until the end of this line, then answer 500
        line_.clear();
      } else {
        line_.append(in.data(), n);
      }
    }
    in.remove_prefix(n);
    if (nl == nullptr) break;
    if (line_overflow_) {
      line_overflow_ = false;
      out_.append("500 5.5.0 Error: line too long\r\n");
      continue;
    }
    std::string_view line = line_;
    line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    verdict v = verdict::more;
    if (auth_state_ != auth_state::none) {
      on_auth_response(line);
    } else {
      v = on_command(line);
    }
    line_.clear();
    // Whatever followed STARTTLS in the same read was sent in clear text: never executed.
    if (v != verdict::more) return v;
  }
  return state_ == state::done ? verdict::close : verdict::more;
}

server_session::verdict server_session::on_command(std::string_view line) {
  if (starts_with_nocase(line, "EHLO")) {
    reset_transaction();
    out_.append("250-budstikke-sink\r\n250-PIPELINING\r\n250-SIZE ");
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, host_.size_limit());
    (void)ec;
    out_.append(buf, end);
    out_.append("\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n");
    if (host_.starttls_available() && !tls_) out_.append("250-STARTTLS\r\n");
    if (auth_offered()) out_.append("250-AUTH PLAIN LOGIN\r\n");
    out_.append("250 ENHANCEDSTATUSCODES\r\n");
  } else if (starts_with_nocase(line, "HELO")) {
    reset_transaction();
    out_.append("250 budstikke-sink\r\n");
  } else if (starts_with_nocase(line, "STARTTLS") && line.size() == 8) {
    if (!host_.starttls_available() || tls_) {
      out_.append("502 5.5.1 Error: command not implemented\r\n");
    } else {
      out_.append("220 2.0.0 Ready to start TLS\r\n");
      return verdict::start_tls;
    }
  } else if (starts_with_nocase(line, "AUTH ") || (starts_with_nocase(line, "AUTH") && line.size() == 4)) {
    host_.on_seen(session_host::seen::auth);
    on_auth(line.size() > 5 ? line.substr(5) : std::string_view{});
  } else if (starts_with_nocase(line, "MAIL FROM:")) {
    host_.on_seen(session_host::seen::mail);
    std::string_view address, params;
    if (host_.auth_required() && !authenticated_) {
      out_.append("530 5.7.0 Authentication required\r\n");
    } else if (have_mail_) {
      out_.append("503 5.5.1 Error: nested MAIL command\r\n");
    } else if (!parse_path(line.substr(10), address, params)) {
      out_.append("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
    } else if (host_.size_limit() != 0 && size_param(params) > host_.size_limit()) {
      out_.append("552 5.3.4 Error: message too large\r\n");
    } else {
      have_mail_ = true;
      from_.assign(address);
      out_.append("250 2.1.0 Ok\r\n");
    }
  } else if (starts_with_nocase(line, "RCPT TO:")) {
    std::string_view address, params;
    if (!have_mail_) {
      out_.append("503 5.5.1 Error: need MAIL command\r\n");
    } else if (!parse_path(line.substr(8), address, params) || address.empty()) {
      out_.append("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
    } else if (rcpt_count_ >= max_recipients) {
      out_.append("452 4.5.3 Error: too many recipients\r\n");
    } else if (host_.rcpt_rejected(address)) {
      out_.append("550 5.1.1 Recipient address rejected: User unknown\r\n");
    } else if (host_.rcpt_transient(address)) {
      out_.append("451 4.3.0 Error: try again later\r\n");
    } else {
      if (rcpt_count_ == rcpts_.size()) rcpts_.emplace_back();
      rcpts_[rcpt_count_++].assign(address);
      out_.append("250 2.1.5 Ok\r\n");
    }
  } else if (starts_with_nocase(line, "DATA") && line.size() == 4) {
    if (!have_mail_) {
      out_.append("503 5.5.1 Error: need MAIL command\r\n");
    } else if (rcpt_count_ == 0) {
      out_.append("554 5.5.1 Error: no valid recipients\r\n");
    } else {
      out_.append("354 End data with <CR><LF>.<CR><LF>\r\n");
      state_ = state::data;
      data_state_ = data_state::line_start;
    }
  } else if (starts_with_nocase(line, "RSET")) {
    reset_transaction();
    out_.append("250 2.0.0 Ok\r\n");
  } else if (starts_with_nocase(line, "NOOP")) {
    out_.append("250 2.0.0 Ok\r\n");
  } else if (starts_with_nocase(line, "QUIT")) {
    out_.append("221 2.0.0 Bye\r\n");
    state_ = state::done;
    return verdict::close;
  } else if (starts_with_nocase(line, "VRFY")) {
    out_.append("252 2.0.0 Cannot verify\r\n");
  } else {
    out_.append("502 5.5.2 Error: command not recognized\r\n");
  }
  return verdict::more;
}

void server_session::on_auth(std::string_view args) {
  if (!auth_offered()) {
    out_.append(host_.auth_required() ? "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
                                      : "502 5.5.1 Error: authentication not enabled\r\n");
    return;
  }
  if (authenticated_) {
    out_.append("503 5.5.1 Error: already authenticated\r\n");
    return;
  }
  std::size_t sp = args.find(' ');
  std::string_view mech = args.substr(0, sp);
  std::string_view initial = sp == std::string_view::npos ? std::string_view{} : args.substr(sp + 1);
  if (starts_with_nocase(mech, "PLAIN") && mech.size() == 5) {
    if (initial.empty()) {
      auth_state_ = auth_state::plain;
      out_.append("334 \r\n");
    } else {
      on_auth_response(initial);  // as if it came after "334 "
    }
    return;
  }
  if (starts_with_nocase(mech, "LOGIN") && mech.size() == 5) {
    auth_state_ = auth_state::login_user;
    out_.append("334 VXNlcm5hbWU6\r\n");  // "Username:"
    return;
  }
  out_.append("504 5.5.4 Unrecognized authentication type\r\n");
}

void server_session::on_auth_response(std::string_view line) {
  auth_state state = auth_state_;
  auth_state_ = auth_state::none;
  if (line == "*") {
    out_.append("501 5.7.0 Authentication aborted\r\n");
    return;
  }
  std::string decoded;
  if (!support::decode_base64(line, decoded)) {
    out_.append("501 5.5.2 Cannot decode response\r\n");
    return;
  }
  switch (state) {
    case auth_state::none:  // PLAIN with an initial response
    case auth_state::plain: {
      // authzid NUL authcid NUL password
      std::string_view v = decoded;
      std::size_t a = v.find('\0');
      std::size_t b = a == std::string_view::npos ? a : v.find('\0', a + 1);
      if (b == std::string_view::npos) {
        out_.append("501 5.5.2 Malformed PLAIN response\r\n");
        return;
      }
      finish_auth(v.substr(a + 1, b - a - 1), v.substr(b + 1));
      return;
    }
    case auth_state::login_user:
      login_user_ = std::move(decoded);
      auth_state_ = auth_state::login_password;
      out_.append("334 UGFzc3dvcmQ6\r\n");  // "Password:"
      return;
    case auth_state::login_password:
      finish_auth(login_user_, decoded);
      login_user_.clear();
      return;
  }
}

void server_session::finish_auth(std::string_view user, std::string_view password) {
  if (host_.check_credentials(user, password)) {
    authenticated_ = true;
    out_.append("235 2.7.0 Authentication successful\r\n");
  } else {
    out_.append("535 5.7.8 Error: authentication failed\r\n");
  }
}

void server_session::emit(const char* p, std::size_t n) {
  body_bytes_ += n;
  if (host_.keep_bodies()) body_.append(p, n);
}

// Unstuffs the body (RFC 5321 4.5.2) until the final dot; `ended` when it was found.
std::size_t server_session::feed_data(std::string_view in, bool& ended) {
  const char* p = in.data();
  const char* end = p + in.size();
  while (p != end) {
    switch (data_state_) {
      case data_state::line_start:
        if (*p == '.') {
          data_state_ = data_state::after_dot;
          ++p;
        } else {
          data_state_ = data_state::in_line;
        }
        break;
      case data_state::in_line: {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        const char* stop = nl ? nl + 1 : end;
        emit(p, static_cast<std::size_t>(stop - p));
        p = stop;
        if (nl) data_state_ = data_state::line_start;
        break;
      }
      case data_state::after_dot:
        if (*p == '\r') {
          data_state_ = data_state::after_dot_cr;
          ++p;
        } else {
          data_state_ = data_state::in_line;  // a stuffed dot: dropped
        }
        break;
      case data_state::after_dot_cr:
        if (*p == '\n') {
          ended = true;
          state_ = state::command;
          return static_cast<std::size_t>(p + 1 - in.data());
        }
        emit("\r", 1);  // ".\rX": the line's leading dot goes, the CR stays
        data_state_ = data_state::in_line;
        break;
    }
  }
  return in.size();
}

server_session::verdict server_session::on_end_of_data() {
  session_host::dot_fate fate = session_host::dot_fate::accept;
  bool too_large = host_.size_limit() != 0 && body_bytes_ > host_.size_limit();
  if (!too_large) fate = host_.on_dot();
  if (fate == session_host::dot_fate::drop) {
    state_ = state::done;
    return verdict::drop;
  }
  if (too_large) {
    out_.append("552 5.3.4 Error: message too large\r\n");
  } else if (fate == session_host::dot_fate::transient) {
    out_.append("451 4.3.0 Error: try again later\r\n");
  } else {
    std::uint64_t id = host_.on_message(from_, rcpts_, rcpt_count_, body_, body_bytes_);
    out_.append("250 2.0.0 Ok: queued as ");
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, id);
    (void)ec;
    out_.append(buf, end);
    out_.append("\r\n");
  }
  reset_transaction();
  return verdict::more;
}

}  // namespace budstikke::testpeers
