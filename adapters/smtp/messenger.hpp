// The SMTP side of a shard: one pool per relay behind one messenger that spreads deliveries by
// weight, drains a relay that fails and sends what it handed back through another one.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "adapters/delivery.hpp"
#include "adapters/smtp/config.hpp"

namespace budstikke::adapters::smtp {

// A messenger whose close() completes asynchronously: the engine waits for it at shutdown.
class smtp_messenger : public messenger {
 public:
  // Completes once close() has finished everything: every pushed delivery has had its
  // on_delivered call and every connection is closed.
  virtual boost::asio::awaitable<void> async_wait_closed() = 0;
};

// Single-threaded like the pools it holds. Throws std::runtime_error for unusable settings
// (no relay, a CA file that cannot be read). Destroy it only after async_wait_closed() has
// completed or its io_context has stopped for good.
std::unique_ptr<smtp_messenger> make_smtp_messenger(boost::asio::any_io_executor ex, const smtp_config& cfg,
                                                    delivery_listener& listener);

}  // namespace budstikke::adapters::smtp
