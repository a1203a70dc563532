// "host:port" as the configuration and the CLI write listen addresses (IPv6 as "[::1]:9464").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace budstikke::support {

struct host_port {
  std::string host;
  std::uint16_t port = 0;
};

// nullopt when `s` is not HOST:PORT with a port of 0..65535.
std::optional<host_port> parse_host_port(std::string_view s);

}  // namespace budstikke::support
