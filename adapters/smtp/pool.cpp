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

#include "adapters/path.hpp"
#include "adapters/smtp/dialog.hpp"
#include "adapters/watchdog.hpp"
#include "support/backoff.hpp"
#include "support/pending_handlers.hpp"
#include "support/tls.hpp"

namespace budstikke::adapters::smtp {

namespace asio = boost::asio;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

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
    bool probe = false;  // this connection attempt is the suspended relay's probe
  };

  impl(asio::any_io_executor executor, relay_config config, delivery_listener& user)
      : ex(std::move(executor)),
        cfg(std::move(config)),
        user_listener(user),
        closed_signal(ex),
        probe_timer(ex),
        handlers(ex) {
    cfg.connections = std::max<std::size_t>(1, cfg.connections);
    cfg.max_messages_per_connection = std::max<std::size_t>(1, cfg.max_messages_per_connection);
    if (cfg.tls != tls_mode::none)
      tls_context.emplace(support::make_tls_client_context({.ca_file = cfg.ca_file, .verify = cfg.tls_verify}, "smtp"));
    if (cfg.tls_server_name.empty()) cfg.tls_server_name = cfg.host;
    relay_name = cfg.name();
    health = cfg.paths ? cfg.paths->at(relay_name) : std::make_shared<path_health>();
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
      case outcome::unsent: ++st.unsent; break;
    }
    user_listener.on_delivered(d);
  }

  void push(delivery& d) {
    queue.push(&d);
    if (closed || suspended()) {
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
    probe_timer.cancel();
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

  // Hands queued deliveries back unsent, later (push never calls on_delivered itself).
  void schedule_hand_back() {
    if (hand_back_posted) return;
    hand_back_posted = true;
    asio::post(ex, handlers.wrap([this] {
      hand_back_posted = false;
      hand_back_queue(closed ? "local: relay closed" : "local: relay suspended: " + health->snapshot().reason);
      if (!closed) sync_path();
      maybe_closed();
    }));
  }

  // Not sent through this relay, and not charged to the messages: they wait until the next probe.
  void hand_back_queue(std::string_view reason) {
    const auto next_probe = health->snapshot().next_probe;
    const auto wait = time_until(std::max(next_probe, relay_down_until), clock_type::now());
    while (delivery* d = queue.pop()) {
      d->result = outcome::unsent;
      d->reply.assign(reason);
      d->retry_after = wait;
      on_delivered(*d);
    }
  }

  void spawn() {
    for (auto& c : connections) {
      if (c->running) continue;
      c->probe = probe_requested;
      probe_requested = false;
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

  // Nothing goes through this relay: the path is suspended (by any shard) and no connection of
  // ours is up.
  bool suspended() const { return established == 0 && !health->usable(); }

  asio::awaitable<void> run(connection& c) {
    // spawn() counted this connection as connecting; converse() uncounts it once connected.
    for (;;) {
      if (probe_requested && !c.probe) {  // spawn() found no connection free: this one probes
        c.probe = true;
        probe_requested = false;
      }
      // While suspended only the probe connects: one attempt per backoff, not one per connection.
      if (closed || !(c.probe || (!queue.empty() && !suspended()))) {
        --connecting;
        // Suspended by another shard while this connection waited to reconnect: what waits
        // here goes back unsent, and this pool watches the path too.
        if (!closed && !queue.empty()) schedule_hand_back();
        break;
      }
      c.deadline.reset();
      c.retry_after = std::chrono::milliseconds(0);
      if (c.probe) ++st.probes;
      co_await session(c);
      c.probe = false;
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
        consecutive_failures = 0;
        relay_down_until = {};
        down_reason.clear();
        if (health->succeeded()) log(log_level::info, "smtp relay usable again", {});
        sync_path();
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
      if (established == 0) path_failed("said 421 (service closing)", false);
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
    // A certificate, STARTTLS or credentials that do not work are a configuration to fix: said
    // as an error, not a warning.
    const bool misconfigured = why == error::tls_failed || why == error::auth_failed ||
                               why == error::auth_requires_tls || why == error::auth_unavailable ||
                               why == error::starttls_unavailable;
    if (why == error::tls_failed) ++st.tls_failures;
    if (why == error::auth_failed || why == error::auth_unavailable || why == error::auth_requires_tls) {
      ++st.auth_failures;
    }
    std::string detail = why ? why.message() : std::string("cannot connect");
    if (!c.tls_error.empty()) detail += ": " + c.tls_error;
    drain(c.retry_after, reason);
    if (established == 0) path_failed(detail, misconfigured);
  }

  // The relay failed and no connection of ours is up: the path is suspended for every shard of
  // the process (path_health), what waits goes back unsent, and one probe at a time tries again
  // after a capped exponential backoff. One line in the log per change of state or of the reason
  // (a certificate that still does not match is said once), by the shard that saw it first.
  void path_failed(const std::string& detail, bool misconfigured) {
    if (health->failed(detail, clock_type::now(), next_random(), reconnect))
      log(misconfigured ? log_level::error : log_level::warn, "smtp relay suspended", detail);
    hand_back_queue(down_reason);
    sync_path();
  }

  // Our view of the path against the shared one: report a change to the listener, and while it
  // is not usable, watch it (another shard's probe may succeed) and take the probe when due.
  void sync_path() {
    const auto view = health->snapshot();
    if (view.generation != reported_generation) {
      reported_generation = view.generation;
      if (view.usable() != reported_usable) {
        reported_usable = view.usable();
        if (reported_usable) ++st.resumed; else ++st.suspensions;
      }
      user_listener.on_path_state(event_of("smtp", relay_name, view, clock_type::now()));
    }
    if (!view.usable()) watch_path(view.next_probe);
  }

  // While the path is not usable: wake at the next probe (or within watch_interval, to learn of
  // another shard's probe), take the probe if it is ours to take, and sync again.
  void watch_path(clock_type::time_point next_probe) {
    if (watching || closing) return;
    watching = true;
    const auto now = clock_type::now();
    probe_timer.expires_at(std::clamp(next_probe, now, now + watch_interval));
    probe_timer.async_wait(handlers.wrap([this](boost::system::error_code ec) {
      watching = false;
      if (ec || closing) return;
      if (established == 0 && health->take_probe(clock_type::now(), probe_timeout())) {
        probe_requested = true;
        if (live < connections.size()) spawn();
      }
      sync_path();
    }));
  }

  // A probe goes through connect, greeting, EHLO, STARTTLS and AUTH: given up on after that long.
  std::chrono::milliseconds probe_timeout() const { return cfg.connect_timeout + 4 * cfg.command_timeout; }

  // Until `for_how_long` has passed the relay takes no new work unless a connection is up.
  void drain(std::chrono::milliseconds for_how_long, std::string reason) {
    relay_down_until = std::max(relay_down_until, clock_type::now() + for_how_long);
    down_reason = std::move(reason);
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
    if (!support::set_tls_peer_name(ssl, cfg.tls_server_name, cfg.tls_verify)) {
      c.tls_error = "cannot set the name to verify";
      co_return false;
    }
    c.deadline.expires_after(cfg.command_timeout);
    auto [hec] = co_await c.tls->async_handshake(asio::ssl::stream_base::client, use_tuple);
    if (!hec) co_return true;
    c.tls_error = c.deadline.expired() ? "handshake timeout" : support::tls_handshake_error(ssl, hec).message();
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
  clock_type::time_point relay_down_until{};  // this pool's own reconnect wait after a failure
  std::shared_ptr<path_health> health;  // shared by every shard's pool for this relay
  bool reported_usable = true;           // what the listener was last told
  std::uint64_t reported_generation = 0;
  asio::steady_timer probe_timer;        // watches the path while it is not usable
  bool watching = false, probe_requested = false;
  static constexpr std::chrono::milliseconds watch_interval{250};
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

bool pool::available() const { return !impl_->suspended(); }

bool pool::closed() const { return impl_->closed; }

}  // namespace budstikke::adapters::smtp
