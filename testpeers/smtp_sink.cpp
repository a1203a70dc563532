#include "testpeers/smtp_sink.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include "testpeers/sink_server.hpp"
#include "testpeers/session.hpp"
#include "adapters/watchdog.hpp"

namespace budstikke::testpeers {
using adapters::io_deadline;

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct smtp_sink::impl final : sink_server, session_host {
  impl(asio::any_io_executor executor, smtp_sink_options options)
      : sink_server(std::move(executor)), opt(std::move(options)), dice(opt.seed) {
    if (!opt.tls_cert_file.empty()) {
      tls_context.emplace(asio::ssl::context::tls_server);
      SSL_CTX_set_min_proto_version(tls_context->native_handle(), TLS1_2_VERSION);
      tls_context->use_certificate_chain_file(opt.tls_cert_file);
      tls_context->use_private_key_file(opt.tls_key_file.empty() ? opt.tls_cert_file : opt.tls_key_file,
                                        asio::ssl::context::pem);
    }
    if (opt.maildir) open_maildir(*opt.maildir);
    listen(opt.listen_host, opt.port);
  }

  void open_maildir(const std::string& dir) {
    namespace fs = std::filesystem;
    for (const char* sub : {"tmp", "new", "cur"}) fs::create_directories(fs::path(dir) / sub);
    maildir_path = dir;
    recipients_log = std::fopen((fs::path(dir) / "recipients.log").c_str(), "a");
    if (recipients_log == nullptr) {
      throw std::system_error(errno, std::generic_category(), "cannot open recipients.log in " + dir);
    }
    name_prefix = std::to_string(std::time(nullptr)) + "." + std::to_string(::getpid()) + "_";
  }

  ~impl() {
    if (recipients_log != nullptr) std::fclose(recipients_log);
  }

  double next_unit() noexcept { return dice.next_unit(); }

  bool rcpt_transient(std::string_view address) override {
    const bool always = !opt.defer_rcpt_containing.empty() && address.find(opt.defer_rcpt_containing) != std::string_view::npos;
    if (!always && (opt.transient_share <= 0 || next_unit() >= opt.transient_share / 2)) return false;
    counters.rcpt_transient.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  bool rcpt_rejected(std::string_view address) override {
    if (opt.reject_rcpt_containing.empty() ||
        address.find(opt.reject_rcpt_containing) == std::string_view::npos) {
      return false;
    }
    counters.rcpt_rejected.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  dot_fate on_dot() override {
    if (opt.drop_after_dot_share > 0 && next_unit() < opt.drop_after_dot_share) {
      counters.dropped_after_dot.fetch_add(1, std::memory_order_relaxed);
      return dot_fate::drop;
    }
    if (opt.transient_share > 0 && next_unit() < opt.transient_share / 2) {
      counters.dot_transient.fetch_add(1, std::memory_order_relaxed);
      return dot_fate::transient;
    }
    return dot_fate::accept;
  }

  std::uint64_t on_message(std::string_view, const std::vector<std::string>& rcpts, std::size_t rcpt_count,
                           std::string_view body, std::size_t body_bytes) override {
    std::uint64_t id = counters.messages.fetch_add(1, std::memory_order_relaxed) + 1;
    counters.recipients.fetch_add(rcpt_count, std::memory_order_relaxed);
    counters.bytes.fetch_add(body_bytes, std::memory_order_relaxed);
    if (maildir_path.empty()) return id;
    namespace fs = std::filesystem;
    std::string name = name_prefix + std::to_string(id) + ".budstikke-sink";
    fs::path tmp = fs::path(maildir_path) / "tmp" / name;
    {
      std::ofstream f(tmp, std::ios::binary);
      f.write(body.data(), static_cast<std::streamsize>(body.size()));
    }
    std::error_code ec;
    fs::rename(tmp, fs::path(maildir_path) / "new" / name, ec);  // maildir: appear complete
    for (std::size_t i = 0; i < rcpt_count; ++i) {
      std::fprintf(recipients_log, "%s\t%s\n", name.c_str(), rcpts[i].c_str());
    }
    std::fflush(recipients_log);
    return id;
  }

  bool keep_bodies() const override { return !maildir_path.empty(); }
  bool starttls_available() const override { return tls_context.has_value() && !opt.implicit_tls; }
  bool auth_required() const override { return !opt.auth_user.empty(); }
  bool auth_in_clear_allowed() const override { return loopback(); }
  bool check_credentials(std::string_view user, std::string_view password) override {
    return user == opt.auth_user && password == opt.auth_password;
  }
  void on_seen(seen what) override {
    (what == seen::mail ? counters.mail_commands : counters.auth_commands).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t size_limit() const override { return opt.size_limit; }

  using tls_stream = asio::ssl::stream<tcp::socket&>;

  static asio::awaitable<bool> server_handshake(impl& self, tcp::socket& socket, std::optional<tls_stream>& tls,
                                                io_deadline& deadline) {
    tls.emplace(socket, *self.tls_context);
    deadline.expires_after(std::chrono::seconds(10));
    auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
    (ec ? self.counters.tls_failures : self.counters.tls_handshakes).fetch_add(1, std::memory_order_relaxed);
    co_return !ec;
  }

  asio::awaitable<void> converse(tcp::socket& socket, io_deadline& deadline) override {
    impl& self = *this;
    server_session session(self);
    std::vector<char> buffer(64 * 1024);
    asio::steady_timer delay(self.executor());
    std::optional<tls_stream> tls;
    if (self.opt.implicit_tls && self.tls_context) {
      if (!co_await server_handshake(self, socket, tls, deadline)) co_return;
    }
    session.start(tls.has_value());
    server_session::verdict v = server_session::verdict::more;
    for (;;) {
      std::string& out = session.out();
      if (!out.empty()) {
        if (self.opt.reply_delay.count() > 0) {
          delay.expires_after(self.opt.reply_delay);
          co_await delay.async_wait(use_tuple);
        }
        deadline.expires_after(self.opt.idle_timeout);  // one timeout: no timer churn
        boost::system::error_code ec;
        if (tls) {
          std::tie(ec, std::ignore) = co_await asio::async_write(*tls, asio::buffer(out), use_tuple);
        } else {
          std::tie(ec, std::ignore) = co_await asio::async_write(socket, asio::buffer(out), use_tuple);
        }
        if (ec) co_return;
        out.clear();
      }
      if (v == server_session::verdict::start_tls) {
        // The rest of that read was dropped with the verdict: the handshake starts clean.
        if (!co_await server_handshake(self, socket, tls, deadline)) co_return;
        session.on_tls_started();
        v = server_session::verdict::more;
      }
      if (v != server_session::verdict::more) co_return;
      deadline.expires_after(self.opt.idle_timeout);
      boost::system::error_code ec;
      std::size_t n = 0;
      if (tls) {
        std::tie(ec, n) = co_await tls->async_read_some(asio::buffer(buffer), use_tuple);
      } else {
        std::tie(ec, n) = co_await socket.async_read_some(asio::buffer(buffer), use_tuple);
      }
      if (ec) co_return;
      v = session.feed(std::string_view(buffer.data(), n));
    }
  }

  struct atomic_stats {
    std::atomic<std::uint64_t> messages{0}, recipients{0}, bytes{0}, rcpt_transient{0}, rcpt_rejected{0},
        dot_transient{0}, dropped_after_dot{0}, tls_handshakes{0}, tls_failures{0}, auth_commands{0},
        mail_commands{0};
  };

  smtp_sink_options opt;
  std::optional<asio::ssl::context> tls_context;
  fault_dice dice;
  std::string maildir_path, name_prefix;
  std::FILE* recipients_log = nullptr;
  atomic_stats counters;
};

smtp_sink::smtp_sink(asio::any_io_executor ex, smtp_sink_options opt)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opt))) {
  impl_->start();
}

smtp_sink::~smtp_sink() { impl_->stop(); }

std::uint16_t smtp_sink::port() const { return impl_->port(); }

void smtp_sink::stop() { impl_->stop(); }

smtp_sink::stats smtp_sink::statistics() const {
  const auto& c = impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {impl_->connections(), get(c.messages),      get(c.recipients),    get(c.bytes),
          get(c.rcpt_transient), get(c.rcpt_rejected), get(c.dot_transient), get(c.dropped_after_dot),
          get(c.tls_handshakes), get(c.tls_failures), get(c.auth_commands), get(c.mail_commands)};
}

int run_smtp_sink_until_signal(const smtp_sink_options& opt) {
  return run_until_signal<smtp_sink>(opt, [](const smtp_sink::stats& s) {
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "sink: connections=%llu messages=%llu recipients=%llu bytes=%llu rcpt_transient=%llu "
        "rcpt_rejected=%llu dot_transient=%llu dropped_after_dot=%llu tls_handshakes=%llu tls_failures=%llu "
        "auth_commands=%llu mail_commands=%llu\n",
        u(s.connections), u(s.messages), u(s.recipients), u(s.bytes), u(s.rcpt_transient), u(s.rcpt_rejected),
        u(s.dot_transient), u(s.dropped_after_dot), u(s.tls_handshakes), u(s.tls_failures), u(s.auth_commands),
        u(s.mail_commands));
  });
}

}  // namespace budstikke::testpeers
