// A redis-server of the test's own and synchronous pipelines through queue::connection. Each
// connection stays open across calls, as an engine's does (two connections: two "processes").
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "queue/redis.hpp"
#include "tests/support/servers.hpp"

namespace budstikke::testing {

class redis_session {
 public:
  redis_session() : redis_(start_redis(dir_)) { cfg_.port = redis_.port; }

  // Runs one pipeline on connection `which`.
  std::vector<queue::reply_ptr> exec(const queue::request& req, int which = 0) {
    std::vector<queue::reply_ptr> replies;
    std::error_code ec;
    auto& conn = conns_.at(static_cast<std::size_t>(which));
    if (!conn) conn = std::make_unique<queue::connection>(ioc_.get_executor(), cfg_);
    boost::asio::co_spawn(ioc_, [&]() -> boost::asio::awaitable<void> { ec = co_await conn->async_exec(req, replies); },
                          [](std::exception_ptr e) {
                            if (e) std::rethrow_exception(e);
                          });
    ioc_.restart();
    ioc_.run();
    REQUIRE_FALSE(ec);
    return replies;
  }

  // One command's reply.
  template <typename... Args>
  queue::reply_ptr command(const Args&... args) {
    queue::request req;
    req.command(args...);
    return std::move(exec(req)[0]);
  }

  // INFO `section` as text.
  std::string info(std::string_view section) { return std::string(queue::as_string(command("INFO", section).get())); }

 private:
  temp_dir dir_;
  redis_server redis_;
  queue::redis_config cfg_;
  boost::asio::io_context ioc_;
  std::array<std::unique_ptr<queue::connection>, 2> conns_;
};

}  // namespace budstikke::testing
