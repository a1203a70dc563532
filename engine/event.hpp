// A wake-up signal between coroutines of one shard (single-threaded): notify() before wait() is
// not lost, and notifying an event that is already set costs nothing.
#pragma once

#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace budstikke::engine {

class event {
 public:
  explicit event(boost::asio::any_io_executor ex) : timer_(ex) {}

  void notify() {
    if (set_) return;
    set_ = true;
    timer_.cancel();
  }

  // Returns when notified or after `timeout`, whichever is first; true if notified.
  boost::asio::awaitable<bool> wait_for(std::chrono::steady_clock::duration timeout) {
    if (!set_) {
      timer_.expires_after(timeout);
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    bool was_set = set_;
    set_ = false;
    co_return was_set;
  }

  // Returns when notified (or when the waiting coroutine is cancelled).
  boost::asio::awaitable<void> wait() {
    if (!set_) {
      timer_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    set_ = false;
  }

 private:
  boost::asio::steady_timer timer_;
  bool set_ = false;
};

}  // namespace budstikke::engine
