// Shared by the SMTP integration tests: deliveries, a counting listener, a bounded io run.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "adapters/delivery.hpp"
#include "adapters/smtp/messenger.hpp"
#include "adapters/smtp/pool.hpp"

namespace budstikke::test {

struct counting_listener final : adapters::delivery_listener {
  std::size_t delivered = 0;
  std::array<std::size_t, adapters::outcome_count> by_outcome{};
  std::vector<adapters::delivery*> order;
  // Each delivery must be reported exactly once.
  bool each_once(const std::vector<adapters::delivery>& ds) const {
    std::vector<const adapters::delivery*> seen(order.begin(), order.end());
    std::sort(seen.begin(), seen.end());
    if (std::adjacent_find(seen.begin(), seen.end()) != seen.end()) return false;
    return seen.size() == ds.size();
  }
  void on_delivered(adapters::delivery& d) override {
    ++delivered;
    ++by_outcome[static_cast<std::size_t>(d.result)];
    order.push_back(&d);
  }
  std::size_t count(adapters::outcome o) const { return by_outcome[static_cast<std::size_t>(o)]; }
};

// A body with the awkward parts: lines that start with dots, a lone dot line, 8-bit text, and
// (for odd i) no final CRLF.
inline std::string sample_body(std::size_t i) {
  std::string b = "From: sender@example.org\r\nTo: user" + std::to_string(i) +
                  "@example.org\r\nSubject: message " + std::to_string(i) + "\r\n\r\n";
  b += ".a line starting with a dot\r\n..two dots\r\n.\r\n";
  b += "bl\xc3\xa5" "b\xc3\xa6r \xc3\xb8l\r\n";
  for (std::size_t k = 0; k < i % 7; ++k) b += "filler line " + std::to_string(k) + "\r\n";
  b += (i % 2 == 1) ? "the end" : "the end\r\n";
  return b;
}

inline std::vector<adapters::delivery> make_deliveries(std::size_t n, const std::string& reject_marker = "",
                                                       std::size_t reject_every = 0) {
  std::vector<adapters::delivery> ds(n);
  for (std::size_t i = 0; i < n; ++i) {
    ds[i].envelope_from = "bounces@example.org";
    bool reject = reject_every != 0 && i % reject_every == 0;
    ds[i].envelope_to = (reject ? reject_marker : std::string("user")) + std::to_string(i) + "@example.org";
    ds[i].data = sample_body(i);
    ds[i].slot = static_cast<std::uint32_t>(i);
  }
  return ds;
}

// Pushes everything, closes the pool, and runs `io` until the pool has closed (or `limit`).
// Returns true when it closed in time.
template <class AfterClosed>
bool push_all_and_close(boost::asio::io_context& io, adapters::smtp::smtp_messenger& p,
                        std::vector<adapters::delivery>& ds, std::chrono::milliseconds limit,
                        AfterClosed after_closed) {
  bool closed = false;
  for (auto& d : ds) p.push(d);
  p.close();
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await p.async_wait_closed();
        closed = true;
        after_closed();
      },
      boost::asio::detached);
  io.restart();
  io.run_for(limit);
  return closed;
}

// run_for that also works after the io_context ran out of work once.
inline void run_for(boost::asio::io_context& io, std::chrono::milliseconds d) {
  io.restart();
  io.run_for(d);
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// What a server must have stored for a delivery: its data, ending in CRLF.
inline std::string expected_stored(const adapters::delivery& d) {
  std::string expected = d.data;
  if (expected.size() < 2 || expected.compare(expected.size() - 2, 2, "\r\n") != 0) expected += "\r\n";
  return expected;
}

inline std::filesystem::path temp_dir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("budstikke-" + tag + "-XXXXXX")).string();
  char* made = ::mkdtemp(tmpl.data());
  REQUIRE(made != nullptr);
  return made;
}

}  // namespace budstikke::test
