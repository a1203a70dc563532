// A per-connection deadline: every socket operation sets it, one watchdog coroutine enforces it.
// Moving the deadline later costs one store (the timer re-arms only when it fires); moving it
// earlier wakes the watchdog to re-arm. Include only from .cpp files (Asio templates).
#pragma once

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace budstikke::adapters {

class io_deadline {
 public:
  using clock = std::chrono::steady_clock;

  void expires_after(clock::duration d) {
    at_ = clock::now() + d;
    if (at_ < armed_ && timer_ != nullptr) timer_->cancel();  // the watchdog sleeps too long
  }
  void clear() noexcept { at_ = clock::time_point::max(); }
  // The watchdog fired: the operation that failed timed out.
  bool expired() const noexcept { return expired_; }
  void reset() noexcept {
    clear();
    expired_ = false;
  }

  // Runs until cancelled (as the right-hand side of `operation || watchdog`); when the deadline
  // passes it marks the deadline expired and calls `on_expiry` (which closes the socket).
  template <class OnExpiry>
  boost::asio::awaitable<void> watch(boost::asio::steady_timer& timer, OnExpiry on_expiry) {
    co_await boost::asio::this_coro::throw_if_cancelled(false);
    timer_ = &timer;
    for (;;) {
      armed_ = at_;
      timer.expires_at(armed_);
      co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
      auto state = co_await boost::asio::this_coro::cancellation_state;
      if (state.cancelled() != boost::asio::cancellation_type::none) break;
      if (clock::now() >= at_) {
        expired_ = true;
        clear();
        on_expiry();
      }
    }
    timer_ = nullptr;
    armed_ = clock::time_point::max();
  }

 private:
  clock::time_point at_ = clock::time_point::max();
  clock::time_point armed_ = clock::time_point::max();
  boost::asio::steady_timer* timer_ = nullptr;
  bool expired_ = false;
};

}  // namespace budstikke::adapters
