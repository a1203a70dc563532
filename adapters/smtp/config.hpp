// How the engine reaches its SMTP relays: one or several, each with its own TLS, AUTH and pool
// settings. docs/config.md's smtp section is the reference for every field.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/path.hpp"

namespace budstikke::adapters::smtp {

enum class tls_mode : std::uint8_t {
  none,      // clear text (a local relay or sink)
  starttls,  // STARTTLS required: a relay that does not offer it gets no MAIL
  implicit,  // TLS from the first byte (port 465, RFC 8314)
};

enum class log_level : std::uint8_t { info, warn, error };

// Relay events worth an operator's attention: a relay went down or came back, TLS or AUTH failed.
// `detail` never carries an address or a credential.
using relay_log = std::function<void(log_level, std::string_view event, std::string_view relay,
                                     std::string_view detail)>;

struct relay_config {
  std::string host = "127.0.0.1";  // an IP address or a host name (resolved at each connect)
  std::uint16_t port = 25;
  unsigned weight = 1;             // share of deliveries among the usable relays
  std::string helo_name = "localhost";
  std::size_t connections = 8;                     // per pool (one pool per relay per engine shard)
  std::size_t max_messages_per_connection = 1000;  // then QUIT and reconnect
  std::chrono::milliseconds connect_timeout{10000}, command_timeout{30000}, data_timeout{120000},
      idle_timeout{60000};
  std::chrono::milliseconds reconnect_backoff_min{100}, reconnect_backoff_max{10000};

  tls_mode tls = tls_mode::none;
  bool tls_verify = true;       // chain against ca_file (or the system store) and the name below
  std::string ca_file;          // PEM bundle; empty: the system's default store
  std::string tls_server_name;  // SNI and the name the certificate must carry; empty: host
  std::string username;         // AUTH when not empty
  std::string password;         // from the environment or a file, never from the YAML
  // AUTH in clear text, only honoured when the relay's address is a loopback address.
  bool allow_auth_without_tls = false;

  relay_log log;  // empty: plain lines on stderr

  // Each relay's health by name, shared by every shard's pool (and by copies of this config).
  std::shared_ptr<path_registry> paths = std::make_shared<path_registry>();

  // "host:port", for logs.
  std::string name() const { return host + ":" + std::to_string(port); }
};

// The top-level keys are the one-relay case and the defaults every entry of `relays` starts from.
struct smtp_config : relay_config {
  std::vector<relay_config> relays;  // empty: the single relay above
  static constexpr std::size_t max_relays = 32;

  // The relays to use: `relays`, or the top-level one.
  std::vector<relay_config> effective_relays() const {
    if (!relays.empty()) return relays;
    return {static_cast<const relay_config&>(*this)};
  }
};

}  // namespace budstikke::adapters::smtp
