// The admin HTTP port (engine.admin_listen): GET /metrics (Prometheus text format), /healthz
// (the process is alive) and /readyz (every shard has reached Redis and is pulling); and, when an
// unsubscribe secret is configured, POST /unsubscribe?t=TOKEN (RFC 8058 one-click: withdraws the
// consent the signed token names; idempotent; GET never changes anything). It runs on a thread
// of its own, never on a shard's loop. Requests are small (8 KiB of headers, 4 KiB of body) and
// bounded in time (10 s per request); at most 32 connections at once.
// Beast stays in admin_http.cpp: this header is cheap to include.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace budstikke::engine {

namespace metrics {
class registry;
}
struct config;

// "host:port" (IPv6 as "[::1]:9464"); nullopt when it is not one.
struct host_port {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<host_port> parse_host_port(std::string_view s);

class admin_server {
 public:
  // Binds at once (port 0: any free port) and serves on its own thread until destroyed.
  // Throws std::system_error when it cannot listen. With `cfg` (which must outlive the server)
  // POST /unsubscribe reaches Redis through it.
  admin_server(const host_port& listen, metrics::registry& reg, const config* cfg = nullptr);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  std::uint16_t port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// One request over a fresh connection, for the bench and the tests; nullopt (and `error`) on
// failure or after `timeout`.
struct http_response {
  int status = 0;
  std::string content_type;
  std::string body;
};
std::optional<http_response> http_get(const host_port& server, std::string_view target,
                                      std::chrono::milliseconds timeout, std::string* error = nullptr);
std::optional<http_response> http_request(const host_port& server, std::string_view method, std::string_view target,
                                          std::string_view body, std::chrono::milliseconds timeout,
                                          std::string* error = nullptr);

}  // namespace budstikke::engine
