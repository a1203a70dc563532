// The admin HTTP port (engine.admin_listen): GET /metrics (Prometheus text format), /healthz
// (the process is alive) and /readyz (every shard has reached Redis and is pulling); and, when an
// unsubscribe secret is configured, POST /unsubscribe?t=TOKEN (RFC 8058 one-click: withdraws the
// consent the signed token names; idempotent; GET never changes anything). It runs on a thread
// of its own, never on a shard's loop. Requests are small (8 KiB of headers, 4 KiB of body) and
// bounded in time (10 s per request); at most 32 connections at once.
// Beast stays in server.cpp: this header is cheap to include.
#pragma once

#include <cstdint>
#include <memory>

#include "support/host_port.hpp"

namespace budstikke {
struct config;
namespace engine::metrics {
class registry;
}
}  // namespace budstikke

namespace budstikke::admin {

class server {
 public:
  // Binds at once (port 0: any free port) and serves on its own thread until destroyed.
  // Throws std::system_error when it cannot listen. With `cfg` (which must outlive the server)
  // POST /unsubscribe reaches Redis through it.
  server(const support::host_port& listen, engine::metrics::registry& reg, const config* cfg = nullptr);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint16_t port() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace budstikke::admin
