// A pool of pipelined SMTP connections to one relay: the `messenger` an engine shard sends
// e-mail through. Single-threaded: construct, push, close and destroy on the shard's thread.
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

namespace budstikke::adapters::smtp {

struct relay_config {
  std::string host = "127.0.0.1";  // an IP address or a host name (resolved at each connect)
  std::uint16_t port = 25;
  std::string helo_name = "localhost";
  std::size_t connections = 8;                     // per pool (one pool per engine shard)
  std::size_t max_messages_per_connection = 1000;  // then QUIT and reconnect
  std::chrono::milliseconds connect_timeout{10000}, command_timeout{30000}, data_timeout{120000},
      idle_timeout{60000};
  std::chrono::milliseconds reconnect_backoff_min{100}, reconnect_backoff_max{10000};
};

class pool final : public messenger {
 public:
  pool(boost::asio::any_io_executor ex, relay_config cfg, delivery_listener& listener);
  ~pool() override;
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  // Queues the delivery (FIFO). Never calls on_delivered from inside push. While the relay is
  // known to be down (a connect failed and no connection is up), deliveries come back transient
  // soon after instead of waiting.
  void push(delivery& d) override;

  // Finish pushed work, QUIT, stop; on_delivered is still called for everything pushed.
  void close() override;

  // Completes once close() has finished everything (all connections ended).
  boost::asio::awaitable<void> async_wait_closed();

  struct stats {
    std::uint64_t connects, connect_failures, accepted, transient, permanent, ambiguous;
  };
  const stats& statistics() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace budstikke::adapters::smtp
