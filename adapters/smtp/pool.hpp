// A pool of pipelined SMTP connections to one relay (clear text, STARTTLS or implicit TLS; AUTH
// PLAIN/LOGIN). make_smtp_messenger puts one per relay behind the messenger a shard sends through.
// Single-threaded: construct, push, close and destroy on the shard's thread.
//
// Lifetime: destroy the pool only after async_wait_closed() has completed, or after its
// io_context has stopped running for good.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "adapters/delivery.hpp"
#include "adapters/smtp/config.hpp"
#include "adapters/smtp/messenger.hpp"

namespace budstikke::adapters::smtp {

class pool final : public smtp_messenger {
 public:
  // Throws std::runtime_error when the TLS settings cannot be loaded (a CA file that is missing).
  pool(boost::asio::any_io_executor ex, relay_config cfg, delivery_listener& listener);
  ~pool() override;
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Queues the delivery (FIFO). Never calls on_delivered from inside push. While the relay is
  // suspended (the last connection attempt failed and no connection is up), deliveries come back
  // unsent soon after, with retry_after set to the next probe.
  void push(delivery& d) override;

  // Finish pushed work, QUIT, stop; on_delivered is still called for everything pushed.
  void close() override;

  // Completes once close() has finished everything (all connections ended).
  boost::asio::awaitable<void> async_wait_closed() override;

  // False while the relay is suspended: a connect, TLS or AUTH failure or a 421 left no connection
  // up. One probe connection tries again after a capped exponential backoff with jitter
  // (reconnect_backoff_min/max); once one connects, the relay is usable again. Each change is
  // reported to the listener's on_path_state.
  bool available() const;
  // close() has finished: a push now only comes back transient.
  bool closed() const;

  struct stats {
    std::uint64_t connects, connect_failures, accepted, transient, permanent, ambiguous;
    std::uint64_t tls_failures, auth_failures, service_closing;
    std::uint64_t unsent, probes;
    std::uint64_t suspensions, resumed;  // changes of the path's state as this pool reported them
  };
  const stats& statistics() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace budstikke::adapters::smtp
