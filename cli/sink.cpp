// `budstikke sink smtp|sms`: the local test peers (testpeers/), with their fault flags.
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "support/host_port.hpp"
#include "testpeers/sms_sink.hpp"
#include "testpeers/smtp_sink.hpp"

namespace budstikke::cli {
namespace {

// --listen HOST:PORT (port 0: any free port).
support::host_port listen_address(const std::string& s) {
  auto hp = support::parse_host_port(s);
  if (!hp) throw config_error("--listen '" + s + "': expected HOST:PORT with a port of 0..65535");
  return *hp;
}

// --auth USER:PASS.
bool split_auth(const std::string& s, std::string& user, std::string& password) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0) {
    std::cerr << "error: --auth expects USER:PASS\n";
    return false;
  }
  user = s.substr(0, colon);
  password = s.substr(colon + 1);
  return true;
}

void add_smtp_sink(CLI::App* sink, action& chosen) {
  struct options {
    std::string listen = "127.0.0.1:2525";
    testpeers::smtp_sink_options sink;
    std::string maildir;
    long long delay_ms = 0;
    std::string auth;
  };
  auto o = std::make_shared<options>();
  auto& so = o->sink;
  auto* cmd = sink->add_subcommand("smtp", "An SMTP sink (PIPELINING, 8BITMIME, SMTPUTF8)");
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  cmd->add_option("--maildir", o->maildir, "Store every message in DIR/new");
  cmd->add_option("--transient-share", so.transient_share, "Share (0..1) of messages answered 451 4.3.0")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--drop-after-dot-share", so.drop_after_dot_share, "Share (0..1) of messages whose connection is dropped after the final dot, unanswered")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--reject-rcpt-containing", so.reject_rcpt_containing, "Answer 550 5.1.1 to recipients containing this text");
  cmd->add_option("--defer-rcpt-containing", so.defer_rcpt_containing, "Answer 451 4.3.0 to recipients containing this text, every time");
  cmd->add_option("--reply-delay-ms", o->delay_ms, "Delay every reply by this many milliseconds")->check(CLI::Range(0, 60000));
  cmd->add_option("--seed", so.seed, "Seed for the fault shares");
  cmd->add_option("--tls-cert", so.tls_cert_file, "PEM certificate (chain): offer STARTTLS")->check(CLI::ExistingFile);
  cmd->add_option("--tls-key", so.tls_key_file, "PEM private key for --tls-cert (default: the same file)")->check(CLI::ExistingFile);
  cmd->add_flag("--implicit-tls", so.implicit_tls, "TLS from the first byte (as on port 465) instead of STARTTLS");
  cmd->add_option("--auth", o->auth, "USER:PASS: require AUTH PLAIN/LOGIN before MAIL (offered only over TLS unless listening on loopback)");
  cmd->callback([&chosen, o] {
    chosen = [o] {
      auto& so = o->sink;
      auto at = listen_address(o->listen);
      so.listen_host = at.host;
      so.port = at.port;
      if (!o->maildir.empty()) so.maildir = o->maildir;
      so.reply_delay = std::chrono::milliseconds(o->delay_ms);
      if (so.implicit_tls && so.tls_cert_file.empty()) {
        std::cerr << "error: --implicit-tls needs --tls-cert\n";
        return exit_usage;
      }
      if (!o->auth.empty() && !split_auth(o->auth, so.auth_user, so.auth_password)) return exit_usage;
      return testpeers::run_smtp_sink_until_signal(so);
    };
  });
}

void add_sms_sink(CLI::App* sink, action& chosen) {
  struct options {
    std::string listen = "127.0.0.1:13013";
    std::string kind = "kannel", auth;
    testpeers::sms_sink_options sink;
    long long retry_after = 1, slow_ms = 0;
  };
  auto o = std::make_shared<options>();
  auto& so = o->sink;
  auto* cmd = sink->add_subcommand("sms", "An SMS gateway sink over HTTP (Kannel sendsms or JSON)");
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")->capture_default_str();
  cmd->add_option("--kind", o->kind, "kannel (GET/POST /cgi-bin/sendsms) or json (POST, JSON body)")->check(CLI::IsMember({"kannel", "json"}))->capture_default_str();
  cmd->add_option("--store", so.store, "Append every accepted message to FILE, one JSON object per line");
  cmd->add_option("--auth", o->auth, "USER:PASS: Kannel's username/password fields, or HTTP basic auth (json)");
  cmd->add_option("--bearer", so.bearer_token, "json: require Authorization: Bearer TOKEN");
  cmd->add_option("--429-share", so.throttle_share, "Share (0..1) of requests answered 429 with Retry-After")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--retry-after", o->retry_after, "Seconds in the Retry-After of those answers")->check(CLI::Range(0, 86400))->capture_default_str();
  cmd->add_option("--5xx-share", so.error_share, "Share (0..1) of requests answered 500")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slow-share", so.slow_share, "Share (0..1) of requests answered only after --slow-ms (and not stored)")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slow-ms", o->slow_ms, "Delay of the slow answers")->check(CLI::Range(0, 600000));
  cmd->add_option("--drop-share", so.drop_share, "Share (0..1) of requests whose connection is closed unanswered")->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", so.seed, "Seed for the fault shares");
  cmd->callback([&chosen, o] {
    chosen = [o] {
      auto& so = o->sink;
      auto at = listen_address(o->listen);
      so.listen_host = at.host;
      so.port = at.port;
      so.kind = o->kind == "json" ? testpeers::sms_sink_kind::json : testpeers::sms_sink_kind::kannel;
      so.retry_after = std::chrono::seconds(o->retry_after);
      so.slow_delay = std::chrono::milliseconds(o->slow_ms);
      if (!o->auth.empty() && !split_auth(o->auth, so.username, so.password)) return exit_usage;
      return testpeers::run_sms_sink_until_signal(so);
    };
  });
}

}  // namespace

void add_sink(CLI::App& app, action& chosen) {
  auto* sink = app.add_subcommand("sink", "Local test peers that accept and count messages");
  sink->require_subcommand(1);
  add_smtp_sink(sink, chosen);
  add_sms_sink(sink, chosen);
}

}  // namespace budstikke::cli
