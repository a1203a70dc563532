#include "adapters/smtp/pool.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "adapters/smtp/dialog.hpp"
#include "adapters/watchdog.hpp"
#include "support/backoff.hpp"
#include "support/pending_handlers.hpp"

namespace budstikke::adapters::smtp {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

// The client TLS context of one relay: verification against the CA file or the system store.
asio::ssl::context make_tls_context(const relay_config& cfg) {
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (!cfg.ca_file.empty()) {
    ctx.load_verify_file(cfg.ca_file, ec);
    if (ec) throw std::runtime_error("smtp: cannot load ca_file '" + cfg.ca_file + "': " + ec.message());
  } else {
    ctx.set_default_verify_paths(ec);
    if (ec) throw std::runtime_error("smtp: cannot load the system's CA store: " + ec.message());
  }
  ctx.set_verify_mode(cfg.tls_verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
  return ctx;
}

// A growable FIFO of pointers that keeps its storage (the engine bounds how many are pushed).
class delivery_fifo {
 public:
  bool empty() const noexcept { return count_ == 0; }
  std::size_t size() const noexcept { return count_; }
  void push(delivery* d) {
    if (count_ == items_.size()) grow();
    items_[(head_ + count_) & (items_.size() - 1)] = d;
    ++count_;
  }
  delivery* pop() noexcept {
    if (count_ == 0) return nullptr;
    delivery* d = items_[head_];
    head_ = (head_ + 1) & (items_.size() - 1);
    --count_;
    return d;
  }

 private:
  void grow() {
    std::vector<delivery*> bigger(std::max<std::size_t>(64, items_.size() * 2));
    for (std::size_t i = 0; i < count_; ++i) bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
    items_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<delivery*> items_;  // size is a power of two
  std::size_t head_ = 0, count_ = 0;
};

}  // namespace

struct pool::impl final : delivery_source, delivery_listener {
  // One connection: its socket, its dialog and the timers that bound its operations.
  struct connection {
    connection(impl& p, std::size_t index)
        : owner(p),
          id(index),
          socket(p.ex),
          resolver(p.ex),
          wake(p.ex),
          watchdog_timer(p.ex),
          machine(dialog_options{p.cfg.helo_name, p.cfg.max_messages_per_connection,
                                 p.cfg.tls == tls_mode::starttls, p.cfg.username, p.cfg.password},
                  p, p),
          read_buffer(16 * 1024) {}

    impl& owner;
    std::size_t id;
    tcp::socket socket;
    std::optional<asio::ssl::stream<tcp::socket&>> tls;  // a fresh one per TLS session
    std::string tls_error;  // why the last handshake failed, for the log
    tcp::resolver resolver;
    asio::steady_timer wake;  // idle wait and reconnect backoff; cancelled to wake up
    asio::steady_timer watchdog_timer;
    dialog machine;
    std::vector<char> read_buffer;
    io_deadline deadline;
    std::chrono::milliseconds retry_after{0};  // wait before reconnecting
    bool running = false;
    bool idle = false;
  };

  impl(asio::any_io_executor executor, relay_config config, delivery_listener& user)
      : ex(std::move(executor)), cfg(std::move(config)), user_listener(user), closed_signal(ex), handlers(ex) {
    cfg.connections = std::max<std::size_t>(1, cfg.connections);
    cfg.max_messages_per_connection = std::max<std::size_t>(1, cfg.max_messages_per_connection);
    if (cfg.tls != tls_mode::none) tls_context.emplace(make_tls_context(cfg));
    if (cfg.tls_server_name.empty()) cfg.tls_server_name = cfg.host;
    relay_name = cfg.name();
    closed_signal.expires_at(clock_type::time_point::max());
    for (std::size_t i = 0; i < cfg.connections; ++i) {
      connections.push_back(std::make_unique<connection>(*this, i));
    }
    rng_state = 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<std::uintptr_t>(this);
    const auto first = std::max(std::chrono::milliseconds(1), cfg.reconnect_backoff_min);
    reconnect = {.initial = first,
                 .cap = std::max(first, cfg.reconnect_backoff_max),
                 .spread = support::jitter::equal,
                 .floor = first};
  }

  delivery* take() override { return queue.pop(); }

  void on_delivered(delivery& d) override {
    switch (d.result) {
      case outcome::accepted: ++st.accepted; break;
      case outcome::transient: ++st.transient; break;
      case outcome::permanent: ++st.permanent; break;
      case outcome::ambiguous: ++st.ambiguous; break;
    }
    user_listener.on_delivered(d);
  }

  void push(delivery& d) {
    queue.push(&d);
    if (closed || (established == 0 && clock_type::now() < relay_down_until)) {
      schedule_hand_back();
      return;
    }
    if (!idle_connections.empty()) {
      connection* c = idle_connections.back();
      idle_connections.pop_back();
      c->idle = false;
      c->wake.cancel();
      return;
    }
    if (queue.size() > connecting && live < connections.size()) spawn();
  }

  void close() {
    if (closing) return;
    closing = true;
    idle_connections.clear();
    for (auto& c : connections) {
      c->idle = false;
      if (c->running) c->wake.cancel();
    }
    maybe_closed();
  }

  void maybe_closed() {
    if (closing && !closed && live == 0 && queue.empty() && !hand_back_posted) {
      closed = true;
      closed_signal.cancel();
    }
  }

  // Hands queued deliveries back as transient, later (push never calls on_delivered itself).
  void schedule_hand_back() {
    if (hand_back_posted) return;
    hand_back_posted = true;
    asio::post(ex, handlers.wrap([this] {
      hand_back_posted = false;
      hand_back_queue(down_reason.empty() ? "local: relay unreachable (connect failed recently)" : down_reason);
      maybe_closed();
    }));
  }

  void hand_back_queue(std::string_view reason) {
    while (delivery* d = queue.pop()) {
      d->result = outcome::transient;
      d->reply.assign(reason);
      on_delivered(*d);
    }
  }

  void spawn() {
    for (auto& c : connections) {
      if (c->running) continue;
      c->running = true;
      ++live;
      ++connecting;
      // run() ends (live == 0) before closed is set; its completion handler does not touch us.
      asio::co_spawn(ex, run(*c), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);  // never swallow: deliveries would vanish with it
      });
      return;
    }
  }

  std::uint64_t next_random() noexcept {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
  }

  // Exponential in the consecutive failures, jittered to [max(min, b/2), b], b <= max.
  std::chrono::milliseconds backoff() noexcept { return reconnect.delay(consecutive_failures, next_random()); }

  asio::awaitable<void> run(connection& c) {
    // spawn() counted this connection as connecting; converse() uncounts it once connected.
    for (;;) {
      if (queue.empty() || closed) {
        --connecting;
        break;
      }
      c.deadline.reset();
      c.retry_after = std::chrono::milliseconds(0);
      co_await session(c);
      if (c.retry_after.count() > 0 && !closing) {
        c.wake.expires_after(c.retry_after);
        co_await c.wake.async_wait(use_tuple);
      }
      ++connecting;
    }
    c.running = false;
    --live;
    maybe_closed();
  }

  // One connection from connect to close, its operations bounded by the watchdog.
  asio::awaitable<void> session(connection& c) {
    using namespace asio::experimental::awaitable_operators;
    co_await (converse(c) || c.deadline.watch(c.watchdog_timer, [&c] {
                boost::system::error_code ignored;
                c.socket.close(ignored);
                c.resolver.cancel();
              }));
    boost::system::error_code ignored;
    c.socket.shutdown(tcp::socket::shutdown_both, ignored);
    c.socket.close(ignored);
  }

  asio::awaitable<void> converse(connection& c) {
    bool connected = co_await connect(c);
    --connecting;
    if (!connected) {
      on_connect_failure(c, {});
      co_return;
    }
    ++st.connects;
    c.tls.reset();
    c.tls_error.clear();
    boost::system::error_code ec;
    auto peer = c.socket.remote_endpoint(ec);
    connection_security security{false, cfg.allow_auth_without_tls && !ec && peer.address().is_loopback()};
    if (cfg.tls == tls_mode::implicit) {
      if (!co_await handshake(c)) {
        on_connect_failure(c, error::tls_failed);
        co_return;
      }
      security.tls = true;
    }
    bool was_established = false;
    step s = c.machine.on_connected(security);
    for (;;) {
      if (!was_established && c.machine.established()) {
        was_established = true;
        ++established;
        if (consecutive_failures > 0) log(log_level::info, "smtp relay usable again", {});
        consecutive_failures = 0;
        relay_down_until = {};
        down_reason.clear();
      }
      if (s.what == step::kind::close) break;
      if (s.what == step::kind::start_tls) {
        // Not `co_await ... ? ... : ...`: g++ 12 miscompiles co_await inside a conditional.
        bool secured = co_await handshake(c);
        s = secured ? c.machine.on_tls_started() : c.machine.on_failure(error::tls_failed);
      } else if (c.tls) {
        s = co_await advance(c, *c.tls, s);
      } else {
        s = co_await advance(c, c.socket, s);
      }
    }
    if (!was_established) {
      // The greeting, EHLO/HELO, STARTTLS, TLS or AUTH failed, or the connection died.
      on_connect_failure(c, c.machine.close_reason());
      co_return;
    }
    --established;
    if (c.machine.close_reason() == error::service_closing) {
      // 421: the relay is going away or overloaded. Drain it; what it handed back goes elsewhere.
      ++st.service_closing;
      ++consecutive_failures;
      c.retry_after = backoff();
      drain(c.retry_after, "local: relay closing (421)");
      log(log_level::warn, "smtp relay said 421, drained", "service closing");
      return_if_none_established();
    } else if (c.machine.close_reason()) {
      // A connection that worked and then failed: reconnect soon, but never in a tight loop (the
      // wait after a second failure, in [min, 2 * min]).
      c.retry_after = reconnect.delay(2, next_random());
    }
  }

  void on_connect_failure(connection& c, std::error_code why) {
    ++st.connect_failures;
    ++consecutive_failures;
    c.retry_after = backoff();
    std::string reason = "local: ";
    if (!why) {
      reason += "cannot connect to the relay";
    } else {
      reason += why.message();
    }
    bool loud = why == error::tls_failed || why == error::auth_failed || why == error::auth_requires_tls ||
                why == error::auth_unavailable || why == error::starttls_unavailable;
    if (why == error::tls_failed) ++st.tls_failures;
    if (why == error::auth_failed || why == error::auth_unavailable || why == error::auth_requires_tls) {
      ++st.auth_failures;
    }
    if (consecutive_failures == 1 || loud) {
      std::string detail = why ? why.message() : std::string("connect failed");
      if (!c.tls_error.empty()) detail += ": " + c.tls_error;
      log(loud ? log_level::error : log_level::warn, "smtp relay unusable, drained", detail);
    }
    drain(c.retry_after, reason);
    return_if_none_established();
  }

  // Until `for_how_long` has passed the relay takes no new work unless a connection is up.
  void drain(std::chrono::milliseconds for_how_long, std::string reason) {
    relay_down_until = std::max(relay_down_until, clock_type::now() + for_how_long);
    down_reason = std::move(reason);
  }

  void return_if_none_established() {
    // With no connection up, what waits would only wait: hand it back for another relay.
    if (established == 0) hand_back_queue(down_reason);
  }

  void log(log_level level, std::string_view event, std::string_view detail) {
    if (cfg.log) {
      cfg.log(level, event, relay_name, detail);
      return;
    }
    std::fprintf(stderr, "%.*s relay=%s %.*s\n", static_cast<int>(event.size()), event.data(), relay_name.c_str(),
                 static_cast<int>(detail.size()), detail.data());
  }

  // The TLS client handshake on the connected socket, the certificate checked against the
  // configured name (a DNS name or an IP address).
  asio::awaitable<bool> handshake(connection& c) {
    c.tls.emplace(c.socket, *tls_context);
    SSL* ssl = c.tls->native_handle();
    boost::system::error_code ec;
    asio::ip::make_address(cfg.tls_server_name, ec);
    bool name_is_ip = !ec;
    if (!name_is_ip) SSL_set_tlsext_host_name(ssl, cfg.tls_server_name.c_str());
    if (cfg.tls_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      int ok = name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, cfg.tls_server_name.c_str())
                          : X509_VERIFY_PARAM_set1_host(param, cfg.tls_server_name.c_str(), 0);
      if (ok != 1) {
        c.tls_error = "cannot set the name to verify";
        co_return false;
      }
    }
    c.deadline.expires_after(cfg.command_timeout);
    auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (!hec) co_return true;
    long verify = SSL_get_verify_result(ssl);
    if (c.deadline.expired()) {
      c.tls_error = "handshake timeout";
    } else if (verify != X509_V_OK) {
      c.tls_error = X509_verify_cert_error_string(verify);
    } else {
      c.tls_error = hec.message();
    }
    co_return false;
  }

  asio::awaitable<bool> connect(connection& c) {
    c.deadline.expires_after(cfg.connect_timeout);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(cfg.host, ec);
    if (!ec) {
      auto [cec] = co_await c.socket.async_connect(tcp::endpoint(address, cfg.port), use_tuple);
      ec = cec;
    } else {
      auto [rec, endpoints] = co_await c.resolver.async_resolve(cfg.host, std::to_string(cfg.port), use_tuple);
      ec = rec;
      if (!ec) {
        auto [cec, ep] = co_await asio::async_connect(c.socket, endpoints, use_tuple);
        ec = cec;
      }
    }
    if (ec) {
      boost::system::error_code ignored;
      c.socket.close(ignored);
      co_return false;
    }
    c.socket.set_option(tcp::no_delay(true), ec);
    co_return true;
  }

  std::chrono::milliseconds timeout_for(timeout_kind k) const noexcept {
    return k == timeout_kind::data ? cfg.data_timeout : cfg.command_timeout;
  }

  // Carries out one step of the dialog on the socket or the TLS stream over it.
  template <class Stream>
  asio::awaitable<step> advance(connection& c, Stream& stream, step s) {
    switch (s.what) {
      case step::kind::write: {
        c.deadline.expires_after(timeout_for(s.timeout));
        auto [ec, n] = co_await asio::async_write(stream, asio::buffer(s.bytes.data(), s.bytes.size()), use_tuple);
        s = ec ? c.machine.on_write_failed(io_error(c), n) : c.machine.on_written();
        break;
      }
      case step::kind::read: {
        c.deadline.expires_after(timeout_for(s.timeout));
        auto [ec, n] = co_await stream.async_read_some(asio::buffer(c.read_buffer), use_tuple);
        s = ec ? c.machine.on_failure(io_error(c)) : c.machine.on_read(std::string_view(c.read_buffer.data(), n));
        break;
      }
      case step::kind::wait_for_work:
        c.deadline.clear();
        s = co_await wait_for_work(c);
        break;
      case step::kind::close:
      case step::kind::start_tls:  // converse() does the handshake
        break;
    }
    co_return s;
  }

  asio::awaitable<step> wait_for_work(connection& c) {
    if (!queue.empty()) co_return c.machine.on_work();
    if (closing) co_return c.machine.on_quit();
    c.idle = true;
    idle_connections.push_back(&c);
    c.wake.expires_after(cfg.idle_timeout);
    auto [ec] = co_await c.wake.async_wait(use_tuple);
    if (c.idle) {
      c.idle = false;
      idle_connections.erase(std::find(idle_connections.begin(), idle_connections.end(), &c));
    }
    if (!queue.empty()) co_return c.machine.on_work();
    if (closing || !ec) co_return c.machine.on_quit();  // closing, or idle for idle_timeout
    co_return c.machine.on_work();
  }

  error io_error(const connection& c) const noexcept {
    return c.deadline.expired() ? error::timeout : error::connection_lost;
  }

  asio::any_io_executor ex;
  relay_config cfg;
  std::optional<asio::ssl::context> tls_context;
  std::string relay_name;
  std::string down_reason;  // what deliveries handed back while drained are told
  delivery_listener& user_listener;
  asio::steady_timer closed_signal;
  std::vector<std::unique_ptr<connection>> connections;
  std::vector<connection*> idle_connections;
  delivery_fifo queue;
  std::size_t live = 0, connecting = 0, established = 0;
  unsigned consecutive_failures = 0;
  clock_type::time_point relay_down_until{};
  bool closing = false, closed = false, hand_back_posted = false;
  std::uint64_t rng_state;
  support::backoff reconnect;  // from cfg.reconnect_backoff_min/max
  stats st{};
  support::pending_handlers handlers;  // last: destroyed first, so a late handler finds us gone
};

pool::pool(asio::any_io_executor ex, relay_config cfg, delivery_listener& listener)
    : impl_(std::make_unique<impl>(std::move(ex), std::move(cfg), listener)) {}

pool::~pool() = default;

void pool::push(delivery& d) { impl_->push(d); }

void pool::close() { impl_->close(); }

asio::awaitable<void> pool::async_wait_closed() {
  while (!impl_->closed) co_await impl_->closed_signal.async_wait(use_tuple);
  co_await impl_->handlers.async_wait_none();  // the hand-back that set `closed` has returned
}

const pool::stats& pool::statistics() const { return impl_->st; }

bool pool::available() const { return clock_type::now() >= impl_->relay_down_until; }

bool pool::closed() const { return impl_->closed; }

}  // namespace budstikke::adapters::smtp
