// What the dialog's byte-by-byte tests feed it and collect from it, with no socket.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "adapters/smtp/dialog.hpp"

namespace budstikke::testing {

struct fake_source final : adapters::smtp::delivery_source {
  std::deque<adapters::delivery*> items;
  adapters::delivery* take() override {
    if (items.empty()) return nullptr;
    adapters::delivery* d = items.front();
    items.pop_front();
    return d;
  }
};

struct recorder final : adapters::delivery_listener {
  std::vector<adapters::delivery*> done;
  void on_delivered(adapters::delivery& d) override { done.push_back(&d); }
};

inline adapters::delivery make(std::string to, std::string data = "Subject: t\r\n\r\nhello\r\n") {
  adapters::delivery d;
  d.envelope_from = "from@example.org";
  d.envelope_to = std::move(to);
  d.data = std::move(data);
  return d;
}

}  // namespace budstikke::testing
