// The admin HTTP port (engine.admin_listen): GET /metrics (Prometheus text format), /healthz
// (the process is alive) and /readyz (every shard has reached Redis and is pulling); and, when an
// unsubscribe secret is configured, POST /unsubscribe?t=TOKEN (RFC 8058 one-click: withdraws the
// consent the signed token names; idempotent; GET never changes anything). The probes can have a
// listener of their own (engine.probe_listen) and /unsubscribe one that faces the public
// (engine.unsubscribe_listen), so /metrics need not be exposed with it.
//
// It runs on a thread of its own, never on a shard's loop, and stays up under hostile clients:
// a request head must arrive within engine.admin_head_timeout_ms; each listener serves at most
// engine.admin_max_connections at once, the next few only for probes (a reserved slot, head
// within 500 ms), and beyond those a connection gets a quick 503 and is closed. Heads over 8 KiB
// get 431, bodies over 4 KiB 413. Unsubscribes share two long-lived Redis connections, at most
// engine.unsubscribe_rate_per_source a second from one address (429 beyond).
// Beast stays in server.cpp and admin/http.hpp: this header is cheap to include.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "support/host_port.hpp"

namespace budstikke {
struct config;
struct engine_config;
namespace engine::metrics {
class registry;
}
}  // namespace budstikke

namespace budstikke::admin {

// What a listener serves (a bit set).
enum serves : unsigned {
  serves_probes = 1,       // GET /healthz, GET /readyz
  serves_metrics = 2,      // GET /metrics
  serves_unsubscribe = 4,  // POST /unsubscribe
  serves_all = 7,
};

struct listener {
  support::host_port at;
  unsigned serves = serves_all;
};

struct server_limits {
  std::size_t max_connections = 512;  // per listener
  std::chrono::milliseconds head_timeout{2000};
  unsigned unsubscribe_per_source = 10;  // POST /unsubscribe a second from one address
};

// The listeners the configuration names, the admin listener first: admin_listen serves what no
// other listener does. Empty when admin_listen is empty.
std::vector<listener> listeners_of(const engine_config& e);
server_limits limits_of(const engine_config& e);

class server {
 public:
  // Binds every listener at once (port 0: any free port) and serves on its own thread until
  // destroyed. Throws std::system_error naming the address when it cannot listen. With `cfg`
  // (which must outlive the server) POST /unsubscribe reaches Redis through it.
  server(std::vector<listener> listeners, engine::metrics::registry& reg, const config* cfg = nullptr,
         server_limits limits = {});
  server(const support::host_port& listen, engine::metrics::registry& reg, const config* cfg = nullptr)
      : server(std::vector<listener>{{listen, serves_all}}, reg, cfg) {}
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // The port of the i-th listener (as given to the constructor).
  std::uint16_t port(std::size_t i = 0) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace budstikke::admin
