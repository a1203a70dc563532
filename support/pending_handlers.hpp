// The handlers an object has queued on its executor (posted functions, timer waits, completion
// callbacks), counted, so that "closed" can mean "nothing of mine is pending": an owner that waits
// for async_wait_none() may destroy the object at once. A handler that runs after the object is
// gone anyway (its io_context stopped and was run again, or the owner broke the rule) does nothing:
// the count lives in a shared state that outlives the object, as Asio's examples keep a session
// alive with shared_from_this, but without keeping the object itself alive.
//
// Single-threaded: wrap, run and destroy handlers on the object's executor thread.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace budstikke::support {

class pending_handlers {
  struct state {
    std::size_t count = 0;
    boost::asio::steady_timer* none_left = nullptr;  // null once the owner is gone
  };

  // Held by one wrapped handler: counted from wrap() until the handler has run or been destroyed
  // (Asio destroys a handler after invoking it, or unrun when its io_context is destroyed).
  class token {
   public:
    explicit token(std::shared_ptr<state> s) : s_(std::move(s)) { ++s_->count; }
    token(token&& other) noexcept : s_(std::move(other.s_)) {}
    token(const token&) = delete;
    token& operator=(const token&) = delete;
    token& operator=(token&&) = delete;
    ~token() {
      if (s_ && --s_->count == 0 && s_->none_left != nullptr) s_->none_left->cancel();
    }
    bool owner_alive() const noexcept { return s_->none_left != nullptr; }

   private:
    std::shared_ptr<state> s_;
  };

 public:
  explicit pending_handlers(const boost::asio::any_io_executor& ex) : state_(std::make_shared<state>()), none_left_(ex) {
    none_left_.expires_at(boost::asio::steady_timer::time_point::max());
    state_->none_left = &none_left_;
  }
  ~pending_handlers() { state_->none_left = nullptr; }
  pending_handlers(const pending_handlers&) = delete;
  pending_handlers& operator=(const pending_handlers&) = delete;

  // `f` as a handler that is counted while queued and does nothing once the owner is gone.
  template <class F>
  auto wrap(F f) {
    return [t = token(state_), f = std::move(f)](auto&&... args) mutable {
      if (t.owner_alive()) f(std::forward<decltype(args)>(args)...);
    };
  }

  std::size_t count() const noexcept { return state_->count; }

  // Completes once no wrapped handler is queued (at once when none is).
  boost::asio::awaitable<void> async_wait_none() {
    while (state_->count > 0) co_await none_left_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }

 private:
  std::shared_ptr<state> state_;
  boost::asio::steady_timer none_left_;
};

}  // namespace budstikke::support
