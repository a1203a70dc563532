// Runs one coroutine to completion on a private io_context: for the CLI's one-shot commands
// (enqueue, status, pause, bench set-up), which do a few Redis round trips in sequence.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace budstikke::support {

template <typename T>
T run_sync(boost::asio::awaitable<T> op) {
  boost::asio::io_context ioc(1);
  std::optional<T> result;
  std::exception_ptr error;
  boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) result = std::move(v);
  });
  ioc.run();
  if (error) std::rethrow_exception(error);
  return std::move(*result);
}

}  // namespace budstikke::support
