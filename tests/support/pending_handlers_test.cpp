// pending_handlers: counted while queued, inert once the owner is gone, waitable to zero.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "support/pending_handlers.hpp"

using budstikke::support::pending_handlers;
using namespace std::chrono_literals;

TEST_CASE("pending handlers: counted from wrap until run, and the wait ends only after the last one ran") {
  boost::asio::io_context io;
  pending_handlers handlers(io.get_executor());
  int ran = 0;
  boost::asio::post(io, handlers.wrap([&] { ++ran; }));
  boost::asio::post(io, handlers.wrap([&] { boost::asio::post(io, handlers.wrap([&] { ++ran; })); }));
  CHECK(handlers.count() == 2);
  int ran_when_done = -1;
  boost::asio::co_spawn(io, handlers.async_wait_none(), [&](std::exception_ptr) { ran_when_done = ran; });
  io.run();
  CHECK(ran == 2);
  CHECK(ran_when_done == 2);  // the one posted from inside a handler was waited for too
  CHECK(handlers.count() == 0);
}

TEST_CASE("pending handlers: a timer callback is counted until its completion, cancelled or not") {
  boost::asio::io_context io;
  pending_handlers handlers(io.get_executor());
  boost::asio::steady_timer t(io);
  t.expires_after(1h);
  boost::system::error_code seen;
  t.async_wait(handlers.wrap([&](boost::system::error_code ec) { seen = ec; }));
  CHECK(handlers.count() == 1);
  t.cancel();
  CHECK(handlers.count() == 1);  // cancelled, but its completion is still queued
  io.run();
  CHECK(seen == boost::asio::error::operation_aborted);
  CHECK(handlers.count() == 0);
}

TEST_CASE("pending handlers: what runs after the owner is gone does nothing") {
  boost::asio::io_context io;
  bool ran = false;
  {
    auto owner = std::make_unique<pending_handlers>(io.get_executor());
    boost::asio::post(io, owner->wrap([&] { ran = true; }));
  }
  io.run();
  CHECK_FALSE(ran);
}

TEST_CASE("pending handlers: handlers destroyed unrun with their io_context are uncounted safely") {
  auto io = std::make_unique<boost::asio::io_context>();
  auto owner = std::make_unique<pending_handlers>(io->get_executor());
  boost::asio::post(*io, owner->wrap([] {}));
  CHECK(owner->count() == 1);
  owner.reset();
  io.reset();  // destroys the queued handler: its token must not touch the gone owner
  SUCCEED();
}
