// What the project's test sinks (SMTP, SMS) share: a listening socket opened with one clear error,
// and the seeded dice that decide which messages meet an injected fault.
#pragma once

#include <cstdint>
#include <string>

#include <boost/asio/ip/tcp.hpp>

namespace budstikke::testpeers {

struct listening {
  std::uint16_t port = 0;  // the bound port (the one asked for, or the one chosen for port 0)
  bool loopback = false;   // bound to a loopback address
};

// Opens, binds (SO_REUSEADDR) and listens; throws std::system_error "cannot listen on HOST:PORT".
listening listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host, std::uint16_t port);

// xorshift64: fast and reproducible from --seed; not for anything but choosing faults.
class fault_dice {
 public:
  explicit fault_dice(std::uint64_t seed) : state_(seed | 1) {}
  // Uniform in [0, 1).
  double next_unit() noexcept {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<double>(state_ >> 11) * (1.0 / 9007199254740992.0);
  }

 private:
  std::uint64_t state_;
};

}  // namespace budstikke::testpeers
