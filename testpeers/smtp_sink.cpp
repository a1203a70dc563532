#include "testpeers/smtp_sink.hpp"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <unordered_set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include "testpeers/listener.hpp"
#include "testpeers/session.hpp"
#include "adapters/watchdog.hpp"

namespace budstikke::testpeers {
using adapters::io_deadline;

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct smtp_sink::impl final : session_host, std::enable_shared_from_this<impl> {
  impl(asio::any_io_executor executor, smtp_sink_options options)
      : ex(std::move(executor)), opt(std::move(options)), acceptor(ex), dice(opt.seed) {
    if (!opt.tls_cert_file.empty()) {
      tls_context.emplace(asio::ssl::context::tls_server);
      SSL_CTX_set_min_proto_version(tls_context->native_handle(), TLS1_2_VERSION);
      tls_context->use_certificate_chain_file(opt.tls_cert_file);
      tls_context->use_private_key_file(opt.tls_key_file.empty() ? opt.tls_cert_file : opt.tls_key_file,
                                        asio::ssl::context::pem);
    }
    if (opt.maildir) open_maildir(*opt.maildir);
    auto listening = listen_on(acceptor, opt.listen_host, opt.port);
    bound_port = listening.port;
    loopback_only = listening.loopback;
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

  void start() {
    asio::co_spawn(ex, accept_loop(shared_from_this()), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }

  void stop() {
    if (stopped) return;
    stopped = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (tcp::socket* s : sockets) s->close(ignored);
  }

  double next_unit() noexcept { return dice.next_unit(); }

  bool rcpt_transient() override {
    if (opt.transient_share <= 0 || next_unit() >= opt.transient_share / 2) return false;
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
  bool auth_in_clear_allowed() const override { return loopback_only; }
  bool check_credentials(std::string_view user, std::string_view password) override {
    return user == opt.auth_user && password == opt.auth_password;
  }
  void on_seen(seen what) override {
    (what == seen::mail ? counters.mail_commands : counters.auth_commands).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t size_limit() const override { return opt.size_limit; }

  static asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    while (!self->stopped) {
      auto [ec, socket] = co_await self->acceptor.async_accept(use_tuple);
      if (ec) {
        if (self->stopped) break;
        continue;  // e.g. EMFILE: keep serving the connections we have
      }
      self->counters.connections.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(self->ex, serve(self, std::move(socket)), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
    }
  }

  static asio::awaitable<void> serve(std::shared_ptr<impl> self, tcp::socket socket) {
    using namespace asio::experimental::awaitable_operators;
    if (self->stopped) co_return;
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    self->sockets.insert(&socket);
    asio::steady_timer watchdog_timer(self->ex);
    io_deadline deadline;
    co_await (converse(*self, socket, deadline) ||
              deadline.watch(watchdog_timer, [&socket] {
                boost::system::error_code e;
                socket.close(e);
              }));
    self->sockets.erase(&socket);
    socket.close(ignored);
  }

  using tls_stream = asio::ssl::stream<tcp::socket&>;

  static asio::awaitable<bool> server_handshake(impl& self, tcp::socket& socket, std::optional<tls_stream>& tls,
                                                io_deadline& deadline) {
    tls.emplace(socket, *self.tls_context);
    deadline.expires_after(std::chrono::seconds(10));
    auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
    (ec ? self.counters.tls_failures : self.counters.tls_handshakes).fetch_add(1, std::memory_order_relaxed);
    co_return !ec;
  }

  static asio::awaitable<void> converse(impl& self, tcp::socket& socket, io_deadline& deadline) {
    server_session session(self);
    std::vector<char> buffer(64 * 1024);
    asio::steady_timer delay(self.ex);
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
    std::atomic<std::uint64_t> connections{0}, messages{0}, recipients{0}, bytes{0}, rcpt_transient{0},
        rcpt_rejected{0}, dot_transient{0}, dropped_after_dot{0}, tls_handshakes{0}, tls_failures{0},
        auth_commands{0}, mail_commands{0};
  };

  asio::any_io_executor ex;
  smtp_sink_options opt;
  std::optional<asio::ssl::context> tls_context;
  bool loopback_only = false;
  tcp::acceptor acceptor;
  std::uint16_t bound_port = 0;
  fault_dice dice;
  bool stopped = false;
  std::unordered_set<tcp::socket*> sockets;
  std::string maildir_path, name_prefix;
  std::FILE* recipients_log = nullptr;
  atomic_stats counters;
};

smtp_sink::smtp_sink(asio::any_io_executor ex, smtp_sink_options opt)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opt))) {
  impl_->start();
}

smtp_sink::~smtp_sink() { impl_->stop(); }

std::uint16_t smtp_sink::port() const { return impl_->bound_port; }

void smtp_sink::stop() { impl_->stop(); }

smtp_sink::stats smtp_sink::statistics() const {
  const auto& c = impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {get(c.connections),    get(c.messages),      get(c.recipients),    get(c.bytes),
          get(c.rcpt_transient), get(c.rcpt_rejected), get(c.dot_transient), get(c.dropped_after_dot),
          get(c.tls_handshakes), get(c.tls_failures), get(c.auth_commands), get(c.mail_commands)};
}

int run_smtp_sink_until_signal(const smtp_sink_options& opt) {
  asio::io_context io(1);
  // Signals first: whoever sees the port open may already send SIGTERM.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  std::optional<smtp_sink> sink;
  try {
    sink.emplace(io.get_executor(), opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sink: cannot start: %s\n", e.what());
    return 1;
  }
  signals.async_wait([&](const boost::system::error_code&, int) {
    sink->stop();
    io.stop();
  });
  std::printf("listening on %s:%u\n", opt.listen_host.c_str(), static_cast<unsigned>(sink->port()));
  std::fflush(stdout);
  io.run();
  smtp_sink::stats s = sink->statistics();
  std::printf(
      "sink: connections=%llu messages=%llu recipients=%llu bytes=%llu rcpt_transient=%llu "
      "rcpt_rejected=%llu dot_transient=%llu dropped_after_dot=%llu tls_handshakes=%llu tls_failures=%llu "
      "auth_commands=%llu mail_commands=%llu\n",
      static_cast<unsigned long long>(s.connections), static_cast<unsigned long long>(s.messages),
      static_cast<unsigned long long>(s.recipients), static_cast<unsigned long long>(s.bytes),
      static_cast<unsigned long long>(s.rcpt_transient), static_cast<unsigned long long>(s.rcpt_rejected),
      static_cast<unsigned long long>(s.dot_transient), static_cast<unsigned long long>(s.dropped_after_dot),
      static_cast<unsigned long long>(s.tls_handshakes), static_cast<unsigned long long>(s.tls_failures),
      static_cast<unsigned long long>(s.auth_commands), static_cast<unsigned long long>(s.mail_commands));
  std::fflush(stdout);
  return 0;
}

}  // namespace budstikke::testpeers
