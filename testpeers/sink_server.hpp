// What the project's test sinks (SMTP, SMS) share: the server skeleton (a listening socket
// opened with one clear error, one coroutine per accepted connection under an idle watchdog, the
// open sockets tracked so that stop() closes them), the run-until-signal loop of `budstikke sink`,
// and the seeded dice that decide which messages meet an injected fault. Each sink adds only its
// protocol (converse). Include only from .cpp files (Asio templates).
#pragma once

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include "adapters/watchdog.hpp"

namespace budstikke::testpeers {

class sink_server : public std::enable_shared_from_this<sink_server> {
 public:
  sink_server(const sink_server&) = delete;
  sink_server& operator=(const sink_server&) = delete;
  virtual ~sink_server() = default;

  std::uint16_t port() const noexcept { return port_; }  // the one asked for, or the one chosen for 0
  bool loopback() const noexcept { return loopback_; }   // listening on a loopback address
  // Connections accepted so far; safe to read from another thread.
  std::uint64_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }

  // Starts accepting; once, on a sink made with make_shared (the loop holds on to it).
  void start();
  // Stops accepting and closes every connection (without replying). Repeating it does nothing.
  void stop();

 protected:
  explicit sink_server(boost::asio::any_io_executor ex);

  // Opens, binds (SO_REUSEADDR) and listens; throws std::system_error "cannot listen on HOST:PORT".
  void listen(const std::string& host, std::uint16_t port);

  // One connection's protocol, from accept to close. Each read or write sets `deadline`; when it
  // passes, the watchdog closes the socket.
  virtual boost::asio::awaitable<void> converse(boost::asio::ip::tcp::socket& socket,
                                                adapters::io_deadline& deadline) = 0;

  const boost::asio::any_io_executor& executor() const noexcept { return ex_; }

 private:
  static boost::asio::awaitable<void> accept_loop(std::shared_ptr<sink_server> self);
  static boost::asio::awaitable<void> serve(std::shared_ptr<sink_server> self, boost::asio::ip::tcp::socket socket);

  boost::asio::any_io_executor ex_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool loopback_ = false;
  bool stopped_ = false;
  std::unordered_set<boost::asio::ip::tcp::socket*> sockets_;
  std::atomic<std::uint64_t> connections_{0};
};

// Blocking, for `budstikke sink smtp|sms`: runs a Sink (made from an executor and `opt`) on its
// own io_context until SIGINT/SIGTERM, prints "listening on HOST:PORT" (flushed) once it listens
// and, on exit, what `summary(sink.statistics())` prints. Returns the process exit code: 0, or 1
// when the sink cannot start.
template <typename Sink, typename Options, typename Summary>
int run_until_signal(const Options& opt, Summary summary) {
  boost::asio::io_context io(1);
  // Signals first: whoever sees the port open may already send SIGTERM.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::optional<Sink> sink;
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
  summary(sink->statistics());
  std::fflush(stdout);
  return 0;
}

// xorshift64: fast and reproducible from --seed; not for anything but choosing faults.
class fault_dice {
 public:
  explicit fault_dice(std::uint64_t seed) : state_(seed | 1) {}
  // Uniform in [0, 1).
  double next_unit() noexcept {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<double>(state_ >> 11) * (1.0 / 9007199254740992.0);
  }

 private:
  std::uint64_t state_;
};

}  // namespace budstikke::testpeers
