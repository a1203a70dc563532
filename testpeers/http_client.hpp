// One HTTP request over a fresh connection, for the bench and the tests (the admin port's
// /metrics, /readyz and /unsubscribe); nothing in the engine uses it. Beast stays in the .cpp.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "support/host_port.hpp"

namespace budstikke::testpeers {

struct http_response {
  int status = 0;
  std::string content_type;
  std::string body;
};

// nullopt (and `error`) on failure or after `timeout`.
std::optional<http_response> http_get(const support::host_port& server, std::string_view target,
                                      std::chrono::milliseconds timeout, std::string* error = nullptr);
std::optional<http_response> http_request(const support::host_port& server, std::string_view method,
                                          std::string_view target, std::string_view body,
                                          std::chrono::milliseconds timeout, std::string* error = nullptr);

}  // namespace budstikke::testpeers
