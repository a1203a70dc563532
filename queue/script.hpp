// A Lua script of queue/scripts/: the file is the source of truth, embedded into the library at
// build time (queue/scripts/embed.cmake generates the definitions, with each file's SHA1).
//
// Redis runs a script by its SHA1 (EVALSHA, built with request::eval): every new connection
// loads all of them (SCRIPT LOAD), and a call Redis answers NOSCRIPT (restarted, SCRIPT FLUSH, a
// failover to a server that never saw it) is sent again with its source (EVAL) by
// queue::connection, so no caller ever sees NOSCRIPT.
#pragma once

#include <span>
#include <string_view>

namespace budstikke::queue {

struct script {
  std::string_view name;    // the file name without .lua
  std::string_view source;  // the file's bytes
  std::string_view sha1;    // of `source`, 40 lower-case hex digits (what SCRIPT LOAD answers)
};

// Every script of queue/scripts/, in file-name order.
std::span<const script* const> all_scripts();

}  // namespace budstikke::queue
