// `budstikke suppress add|remove|list`: the suppression lists (queue/consent.hpp,
// docs/redis-schema.md) from the command line, addresses in the form the engine looks them up.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace budstikke::cli {

enum class suppress_action { add, remove, list };
struct suppress_options {
  suppress_action action = suppress_action::list;
  std::string channel;
  std::vector<std::string> addresses;  // add, remove
  std::string reason;                  // add
  std::size_t limit = 0;               // list: at most this many; 0 = all
  bool json = false;
};
// `budstikke suppress add|remove|list`. add keeps an earlier entry (its reason and time); exit 0,
// 2 for bad input (an address that cannot be read names it), 1 on Redis failure.
int suppress_command(const config& cfg, const suppress_options& opt);

}  // namespace budstikke::cli
