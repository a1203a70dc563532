#include "adapters/smtp/dialog.hpp"

#include <charconv>
#include <cstring>
#include <utility>

#include <openssl/crypto.h>

#include "support/base64.hpp"

namespace budstikke::adapters::smtp {
namespace {

// Whether a space-separated list of SASL mechanisms contains `mech`.
bool offers(std::string_view list, std::string_view mech) noexcept;

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z') x = static_cast<char>(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z') y = static_cast<char>(y - 'a' + 'A');
    if (x != y) return false;
  }
  return true;
}

bool offers(std::string_view list, std::string_view mech) noexcept {
  while (!list.empty()) {
    std::size_t sp = list.find(' ');
    if (iequals(list.substr(0, sp), mech)) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

bool has_8bit(std::string_view s) noexcept {
  unsigned char any = 0;
  for (char c : s) any |= static_cast<unsigned char>(c);  // branch-free, vectorises
  return (any & 0x80) != 0;
}

// An address we can put between <> without opening a way to inject commands.
enum class address_check { ok, needs_smtputf8, invalid };
address_check check_address(std::string_view a, bool may_be_empty) noexcept {
  if (a.empty()) return may_be_empty ? address_check::ok : address_check::invalid;
  if (a.size() > 512) return address_check::invalid;
  bool utf8 = false;
  for (char ch : a) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x21 || c == 0x7f || c == '<' || c == '>') return address_check::invalid;
    if (c >= 0x80) utf8 = true;
  }
  return utf8 ? address_check::needs_smtputf8 : address_check::ok;
}

bool ends_with_crlf(std::string_view s) noexcept {
  return s.size() >= 2 && s[s.size() - 2] == '\r' && s.back() == '\n';
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

// Copies the body doubling a leading '.' on every line (RFC 5321 4.5.2), ends it in CRLF and
// appends the final dot.
void append_dot_stuffed(std::string& out, std::string_view data) {
  const char* p = data.data();
  const char* end = p + data.size();
  if (p != end && *p == '.') out.push_back('.');
  while (p != end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
    if (nl == nullptr) {
      out.append(p, end);
      break;
    }
    out.append(p, nl + 1);
    p = nl + 1;
    if (p != end && *p == '.') out.push_back('.');
  }
  if (!ends_with_crlf(data)) out.append("\r\n");
  out.append(".\r\n");
}

}  // namespace

dialog::dialog(dialog_options opt, delivery_source& source, delivery_listener& listener)
    : opt_(std::move(opt)), source_(source), listener_(listener) {
  out_.reserve(64 * 1024);
}

step dialog::on_connected(connection_security security) {
  security_ = security;
  out_has_secret_ = false;
  parser_.reset();
  out_.clear();
  out_has_body_ = false;
  caps_ = {};
  phase_ = phase::handshake;
  established_ = false;
  need_rset_ = false;
  close_reason_.clear();
  started_ = 0;
  expected_head_ = expected_count_ = 0;
  txn_head_ = txn_count_ = 0;
  expect(command::greeting);
  expected_sent_ = 1;
  return next_step();
}

step dialog::on_tls_started() {
  if (phase_ != phase::tls_pending) return next_step();
  security_.tls = true;
  // RFC 3207 5: forget all knowledge from the clear-text part, then EHLO again.
  parser_.reset();
  caps_ = {};
  phase_ = phase::handshake;
  write_command(command::ehlo, 0);
  return next_step();
}

step dialog::on_read(std::string_view bytes) {
  // After the 220 to STARTTLS the loop stops: bytes that came with it were sent in clear text
  // and are dropped unread (CVE-2011-0411-style response injection).
  while (!bytes.empty() && phase_ != phase::closed && phase_ != phase::tls_pending) {
    std::size_t n = parser_.feed(bytes);
    bytes.remove_prefix(n);
    if (parser_.error()) {
      fail_connection(static_cast<error>(parser_.error().value()));
      break;
    }
    if (!parser_.done()) break;
    if (expected_sent_ == 0) {  // nothing asked, or a reply to what we have not yet sent
      fail_connection(error::unexpected_reply);
      break;
    }
    on_reply(parser_.get());
    parser_.next();
  }
  return next_step();
}

step dialog::on_written() {
  for (std::size_t i = 0; i < txn_count_; ++i) {
    transaction& t = txns_[(txn_head_ + i) % max_txns];
    if (t.body_sent) t.dot_out = true;
  }
  if (out_has_secret_) {
    OPENSSL_cleanse(out_.data(), out_.size());
    out_has_secret_ = false;
  }
  out_.clear();
  out_has_body_ = false;
  expected_sent_ = expected_count_;
  return next_step();
}

step dialog::on_write_failed(error e, std::size_t bytes_written) {
  for (std::size_t i = 0; i < txn_count_; ++i) {
    transaction& t = txns_[(txn_head_ + i) % max_txns];
    if (t.body_sent && !t.dot_out && t.dot_end <= bytes_written) t.dot_out = true;
  }
  fail_connection(e);
  return next_step();
}

step dialog::on_failure(error e) {
  fail_connection(e);
  return next_step();
}

step dialog::on_work() { return next_step(); }

step dialog::on_quit() {
  if (phase_ == phase::ready && txn_count_ == 0 && expected_count_ == 0 && out_.empty()) {
    write_command(command::quit, 0);
    phase_ = phase::quitting;
  }
  return next_step();
}

step dialog::next_step() {
  if (phase_ == phase::closed) return {step::kind::close, timeout_kind::command, {}};
  if (phase_ == phase::tls_pending) return {step::kind::start_tls, timeout_kind::command, {}};
  if (!out_.empty()) {
    return {step::kind::write, out_has_body_ ? timeout_kind::data : timeout_kind::command, out_};
  }
  if (expected_count_ > 0) {
    bool dot = expected_[expected_head_].cmd == command::dot;
    return {step::kind::read, dot ? timeout_kind::data : timeout_kind::command, {}};
  }
  if (phase_ == phase::ready) {
    if (start_next_transaction()) return next_step();
    if (txn_count_ == 0 && started_ >= opt_.max_messages) return on_quit();
    return {step::kind::wait_for_work, timeout_kind::command, {}};
  }
  // Nothing expected while handshaking or quitting: the dialog is over.
  phase_ = phase::closed;
  return {step::kind::close, timeout_kind::command, {}};
}

void dialog::expect(command cmd, std::uint8_t txn) {
  expected_[(expected_head_ + expected_count_) % max_expected] = {cmd, txn};
  ++expected_count_;
}

void dialog::on_reply(const reply& r) {
  expected e = expected_[expected_head_];
  expected_head_ = (expected_head_ + 1) % max_expected;
  --expected_count_;
  --expected_sent_;

  switch (e.cmd) {
    case command::greeting:
    case command::ehlo:
    case command::helo:
    case command::starttls:
    case command::rset:
    case command::quit:
      on_handshake_reply(e.cmd, r);
      return;
    case command::auth_plain:
    case command::auth_login:
    case command::auth_login_user:
    case command::auth_login_password:
      on_auth_reply(e.cmd, r);
      return;
    default:
      break;
  }
  transaction& t = txns_[e.txn];
  --t.replies_due;
  if (r.code == 421) {
    // The server is going away: a failure of the relay, not of this message (unsent, with the
    // reply); the rest is handed back.
    if (!t.decided) {
      decide(t, r);
      t.result = outcome::unsent;
    }
    fail_connection(error::service_closing);
    return;
  }
  on_txn_reply(e.cmd, t, r);
  if (phase_ != phase::closed) finish_if_done(e.txn);
}

void dialog::on_handshake_reply(command cmd, const reply& r) {
  switch (cmd) {
    case command::greeting:
      if (r.code == 220) {
        write_command(command::ehlo, 0);
      } else {
        fail_connection(r.code == 421 ? error::service_closing : error::greeting_refused);
      }
      return;
    case command::ehlo:
      if (r.cls() == 2) {
        parse_ehlo(r);
        after_hello();
      } else if (r.cls() == 5) {
        write_command(command::helo, 0);  // an old server: RFC 5321 4.1.4
      } else {
        fail_connection(r.code == 421 ? error::service_closing : error::hello_refused);
      }
      return;
    case command::helo:
      if (r.cls() == 2) {
        caps_ = {};
        after_hello();
      } else {
        fail_connection(r.code == 421 ? error::service_closing : error::hello_refused);
      }
      return;
    case command::starttls:
      if (r.code == 220) {
        phase_ = phase::tls_pending;
      } else {
        fail_connection(r.code == 421 ? error::service_closing : error::starttls_unavailable);
      }
      return;
    case command::rset:
      if (r.cls() != 2) fail_connection(r.code == 421 ? error::service_closing : error::unexpected_reply);
      return;
    case command::quit:
      phase_ = phase::closed;
      close_reason_.clear();
      return;
    default:
      return;
  }
}

void dialog::after_hello() {
  if (opt_.require_tls && !security_.tls) {
    // A stripped STARTTLS (or a HELO-only server) ends here: nothing goes out in clear text.
    if (caps_.starttls) {
      write_command(command::starttls, 0);
    } else {
      fail_connection(error::starttls_unavailable);
    }
    return;
  }
  if (opt_.username.empty()) {
    become_ready();
    return;
  }
  if (!security_.tls && !security_.clear_auth_allowed) {
    fail_connection(error::auth_requires_tls);
    return;
  }
  // PLAIN costs one round trip, LOGIN three; both carry the same secret.
  if (offers(caps_.auth, "PLAIN")) {
    write_command(command::auth_plain, 0);
  } else if (offers(caps_.auth, "LOGIN")) {
    write_command(command::auth_login, 0);
  } else {
    fail_connection(error::auth_unavailable);
  }
}

void dialog::become_ready() {
  established_ = true;
  phase_ = phase::ready;
}

void dialog::on_auth_reply(command cmd, const reply& r) {
  if (r.code == 421) {
    fail_connection(error::service_closing);
    return;
  }
  switch (cmd) {
    case command::auth_plain:
    case command::auth_login_password:
      if (r.code == 235) {
        become_ready();
      } else {
        fail_connection(error::auth_failed);
      }
      return;
    case command::auth_login:
    case command::auth_login_user:
      if (r.code == 334) {
        write_command(cmd == command::auth_login ? command::auth_login_user : command::auth_login_password, 0);
      } else {
        fail_connection(error::auth_failed);
      }
      return;
    default:
      return;
  }
}

void dialog::on_txn_reply(command cmd, transaction& t, const reply& r) {
  const bool pipelined = caps_.pipelining;
  switch (cmd) {
    case command::mail:
    case command::rcpt:
      if (r.cls() == 2) {
        if (!pipelined && !t.decided) {
          write_command(cmd == command::mail ? command::rcpt : command::data,
                        static_cast<std::uint8_t>(&t - txns_.data()));
        }
      } else if (r.cls() == 4 || r.cls() == 5) {
        decide(t, r);
      } else {
        fail_connection(error::unexpected_reply);
      }
      return;
    case command::data:
      if (r.code == 354) {
        if (t.decided) {
          // Every RCPT failed yet the server wants data (RFC 2920 3.1): send an empty message so
          // the dialog stays in step; the outcome stays the RCPT's (or MAIL's) reply.
          out_.append(".\r\n");
          expect(command::dot, static_cast<std::uint8_t>(&t - txns_.data()));
          ++t.replies_due;
        } else {
          write_body(t);
        }
      } else if (r.cls() == 4 || r.cls() == 5) {
        decide(t, r);
      } else {
        fail_connection(error::unexpected_reply);
      }
      return;
    case command::dot:
      if (t.decided) return;  // the empty message after failed recipients: already decided
      if (r.cls() == 2) {
        t.result = outcome::accepted;
        describe(r, t.d->reply);
      } else if (r.cls() == 4 || r.cls() == 5) {
        decide(t, r);
      } else {
        fail_connection(error::unexpected_reply);
      }
      return;
    default:
      return;
  }
}

void dialog::parse_ehlo(const reply& r) {
  caps_ = {};
  caps_.esmtp = true;
  std::string_view text = r.text;
  bool first = true;
  while (!text.empty() || first) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (first) {  // the server's name and greeting text
      first = false;
      continue;
    }
    std::size_t sp = line.find_first_of(" =");
    std::string_view keyword = line.substr(0, sp);
    std::string_view params = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    if (iequals(keyword, "PIPELINING")) {
      caps_.pipelining = true;
    } else if (iequals(keyword, "SIZE")) {
      caps_.size = true;
      std::uint64_t limit = 0;
      std::from_chars(params.data(), params.data() + params.size(), limit);
      caps_.size_limit = limit;
    } else if (iequals(keyword, "8BITMIME")) {
      caps_.eightbitmime = true;
    } else if (iequals(keyword, "SMTPUTF8")) {
      caps_.smtputf8 = true;
    } else if (iequals(keyword, "STARTTLS")) {
      caps_.starttls = true;
    } else if (iequals(keyword, "ENHANCEDSTATUSCODES")) {
      caps_.enhanced_status_codes = true;
    } else if (iequals(keyword, "AUTH")) {
      if (!caps_.auth.empty() && !params.empty()) caps_.auth.push_back(' ');
      caps_.auth.append(params);
    }
  }
}

bool dialog::can_start_more() const noexcept {
  return phase_ == phase::ready && txn_count_ < max_txns && started_ < opt_.max_messages;
}

bool dialog::start_next_transaction() {
  if (txn_count_ > 0 && !caps_.pipelining) return false;
  if (need_rset_ && !caps_.pipelining) {
    // Lock-step: RSET gets its own round trip before the next MAIL.
    need_rset_ = false;
    write_command(command::rset, 0);
    return true;
  }
  while (can_start_more()) {
    delivery* d = source_.take();
    if (d == nullptr) return false;
    if (!check_delivery(*d)) continue;
    ++started_;
    std::uint8_t index = new_transaction(*d);
    if (need_rset_) {
      need_rset_ = false;
      write_command(command::rset, 0);
    }
    write_envelope(index, !caps_.pipelining);
    return true;
  }
  return false;
}

bool dialog::check_delivery(delivery& d) {
  address_check from = check_address(d.envelope_from, true);
  address_check to = check_address(d.envelope_to, false);
  const char* refusal = nullptr;
  if (from == address_check::invalid || to == address_check::invalid) {
    refusal = "553 5.1.3 local: invalid envelope address";
  } else if ((d.needs_smtputf8 || from == address_check::needs_smtputf8 ||
              to == address_check::needs_smtputf8) &&
             !caps_.smtputf8) {
    refusal = "553 5.6.7 local: non-ASCII address and the relay lacks SMTPUTF8";
  } else if (caps_.size_limit != 0 &&
             d.data.size() + (ends_with_crlf(d.data) ? 0 : 2) > caps_.size_limit) {
    refusal = "552 5.3.4 local: message larger than the relay's SIZE limit";
  }
  if (refusal == nullptr) return true;
  d.result = outcome::permanent;
  d.reply.assign(refusal);
  listener_.on_delivered(d);
  return false;
}

std::uint8_t dialog::new_transaction(delivery& d) {
  auto index = static_cast<std::uint8_t>((txn_head_ + txn_count_) % max_txns);
  ++txn_count_;
  txns_[index] = {};
  txns_[index].d = &d;
  return index;
}

void dialog::write_envelope(std::uint8_t index, bool lock_step) {
  write_command(command::mail, index);
  if (lock_step) return;
  write_command(command::rcpt, index);
  write_command(command::data, index);
}

void dialog::write_command(command cmd, std::uint8_t index) {
  transaction& t = txns_[index];
  switch (cmd) {
    case command::ehlo:
    case command::helo:
      out_.append(cmd == command::ehlo ? "EHLO " : "HELO ");
      out_.append(opt_.helo_name);
      out_.append("\r\n");
      break;
    case command::mail: {
      const delivery& d = *t.d;
      out_.append("MAIL FROM:<");
      out_.append(d.envelope_from);
      out_.push_back('>');
      if (caps_.size) {
        out_.append(" SIZE=");
        append_number(out_, d.data.size());
      }
      if (caps_.eightbitmime && has_8bit(d.data)) out_.append(" BODY=8BITMIME");
      if (caps_.smtputf8 && (d.needs_smtputf8 || has_8bit(d.envelope_from) || has_8bit(d.envelope_to))) {
        out_.append(" SMTPUTF8");
      }
      out_.append("\r\n");
      break;
    }
    case command::rcpt:
      out_.append("RCPT TO:<");
      out_.append(t.d->envelope_to);
      out_.append(">\r\n");
      break;
    case command::data: out_.append("DATA\r\n"); break;
    case command::rset: out_.append("RSET\r\n"); break;
    case command::starttls: out_.append("STARTTLS\r\n"); break;
    case command::auth_plain: {
      // RFC 4616: authzid (empty) NUL authcid NUL password, sent as the initial response.
      std::string token;
      token.reserve(opt_.username.size() + opt_.password.size() + 2);
      token.push_back('\0');
      token.append(opt_.username);
      token.push_back('\0');
      token.append(opt_.password);
      out_.append("AUTH PLAIN ");
      support::append_base64(token, out_);
      out_.append("\r\n");
      OPENSSL_cleanse(token.data(), token.size());
      out_has_secret_ = true;
      break;
    }
    case command::auth_login: out_.append("AUTH LOGIN\r\n"); break;
    case command::auth_login_user:
    case command::auth_login_password:
      support::append_base64(cmd == command::auth_login_user ? opt_.username : opt_.password, out_);
      out_.append("\r\n");
      out_has_secret_ = true;
      break;
    case command::quit: out_.append("QUIT\r\n"); break;
    default: return;
  }
  expect(cmd, index);
  if (cmd == command::mail || cmd == command::rcpt || cmd == command::data) ++t.replies_due;
}

void dialog::write_body(transaction& t) {
  append_dot_stuffed(out_, t.d->data);
  t.body_sent = true;
  t.dot_end = out_.size();
  out_has_body_ = true;
  ++t.replies_due;
  expect(command::dot, static_cast<std::uint8_t>(&t - txns_.data()));
  // The next envelope rides along with this dot, so it costs no extra round trip.
  if (caps_.pipelining) start_next_transaction();
}

void dialog::decide(transaction& t, const reply& r) {
  if (t.decided) return;
  t.decided = true;
  t.result = r.cls() == 5 ? outcome::permanent : outcome::transient;
  describe(r, t.d->reply);
}

void dialog::finish_if_done(std::uint8_t index) {
  transaction& t = txns_[index];
  if (t.replies_due != 0) return;
  // A transaction that failed before its dot leaves the server mid-transaction: RSET first.
  if (t.decided && !t.body_sent) need_rset_ = true;
  hand_back(t);
}

void dialog::hand_back(transaction& t) {
  // Transactions end in the order they started, so `t` is the oldest one.
  delivery* d = t.d;
  d->result = t.result;
  t = {};
  txn_head_ = (txn_head_ + 1) % max_txns;
  --txn_count_;
  listener_.on_delivered(*d);
}

void dialog::fail_connection(error e) {
  close_reason_ = e;
  phase_ = phase::closed;
  if (out_has_secret_) OPENSSL_cleanse(out_.data(), out_.size());
  out_has_secret_ = false;
  out_.clear();
  out_has_body_ = false;
  expected_head_ = expected_count_ = expected_sent_ = 0;
  while (txn_count_ > 0) {
    transaction& t = txns_[txn_head_];
    if (!t.decided) {
      // Before the final dot the message is untouched: the connection failed, not the message.
      t.result = t.dot_out ? outcome::ambiguous : outcome::unsent;
      std::string& reason = t.d->reply;
      reason.assign("local: ");
      reason.append(smtp_category().message(static_cast<int>(e)));
      if (t.dot_out) reason.append(" after the final dot (RFC 1047)");
    }
    hand_back(t);
  }
}

}  // namespace budstikke::adapters::smtp
