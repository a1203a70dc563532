// The SMS side of a shard: one gateway over HTTP (Kannel or JSON), at most `concurrency` requests
// in flight on keep-alive connections, driven by the shard's event loop (curl multi on Asio).
//
// A 429 or 503 with Retry-After pauses the gateway (for every shard: the pause lives in
// gateway_config::backoff): no request goes out until it is over. The delivery that got it comes
// back transient with `retry_after`, so the engine reschedules it after the pause; deliveries
// pushed meanwhile wait in the queue (bounded by the engine's send window) and go out when the
// pause ends, or come back transient with `retry_after` when the messenger is closed.
#pragma once

#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "adapters/delivery.hpp"
#include "adapters/sms_http/config.hpp"

namespace budstikke::adapters::sms_http {

class sms_messenger : public messenger {
 public:
  // Completes once close() has finished everything: every pushed delivery has had its
  // on_delivered call and every connection is closed.
  virtual boost::asio::awaitable<void> async_wait_closed() = 0;

  struct stats {
    std::uint64_t requests = 0, accepted = 0, transient = 0, permanent = 0, ambiguous = 0;
    std::uint64_t paused = 0;  // deliveries handed back unsent at close because the gateway was paused
    std::uint64_t unsent = 0;  // not sent because the gateway could not be reached (not attempts)
    std::uint64_t probes = 0;  // requests without a message to a suspended gateway
  };
  virtual const stats& statistics() const = 0;
};

// Single-threaded: push, close and destroy on the executor's thread. Destroy it only after
// async_wait_closed() has completed or its io_context has stopped for good. Throws
// std::runtime_error when curl cannot be set up.
std::unique_ptr<sms_messenger> make_sms_messenger(boost::asio::any_io_executor ex, const gateway_config& cfg,
                                                  delivery_listener& listener);

}  // namespace budstikke::adapters::sms_http
