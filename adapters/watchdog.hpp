// A per-connection deadline: every socket operation sets it, one watchdog coroutine enforces it.
// Moving the deadline costs one store; the timer only re-arms when it fires. Include only from
// .cpp files (Asio templates).
#pragma once

#include <chrono>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace budstikke::adapters {

struct io_deadline {
  using clock = std::chrono::steady_clock;
  clock::time_point at = clock::time_point::max();
  bool expired = false;  // the watchdog fired: the failed operation timed out

  void expires_after(clock::duration d) { at = clock::now() + d; }
  void clear() { at = clock::time_point::max(); }
};

// Runs until cancelled (e.g. as the right-hand side of `operation || watchdog`); when the deadline
// passes it sets `expired` and calls `on_expiry` (which closes the socket).
template <class OnExpiry>
boost::asio::awaitable<void> run_watchdog(boost::asio::steady_timer& timer, io_deadline& deadline,
                                          OnExpiry on_expiry) {
  for (;;) {
    timer.expires_at(deadline.at);
    auto [ec] = co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec) co_return;
    if (io_deadline::clock::now() >= deadline.at) {
      deadline.expired = true;
      deadline.clear();
      on_expiry();
    }
  }
}

}  // namespace budstikke::adapters
