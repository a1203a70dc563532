// Child processes and loopback ports, for the benchmark and the integration tests: they start
// real servers (redis-server, smtp-sink, the project's sinks) and must stop exactly those.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/types.h>

namespace budstikke::support {

// A free TCP port on 127.0.0.1 at the moment of asking (bind to port 0, read it, close).
std::uint16_t free_loopback_port();

// True once something accepts TCP connections on 127.0.0.1:port, false after `timeout`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds timeout);

// Path of the running executable (/proc/self/exe), to start `budstikke sink ...` as a child.
std::string self_executable();

struct exit_status {
  int code = -1;       // exit code, or -1 when killed by a signal
  int signal = 0;      // the signal that ended it, or 0
  rusage usage{};      // CPU time and peak RSS of the child
  bool exited_normally() const { return signal == 0 && code == 0; }
};

class child_process {
 public:
  child_process() = default;
  // Starts argv[0] (looked up in PATH) with the given arguments. stdout/stderr go to `log_file`
  // when given, else they are inherited. Throws std::system_error when it cannot start.
  static child_process spawn(const std::vector<std::string>& argv,
                             const std::optional<std::string>& log_file = std::nullopt);

  child_process(child_process&& other) noexcept;
  child_process& operator=(child_process&& other) noexcept;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process();  // SIGKILL + reap, if still running

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  void signal(int sig) const;
  // Waits for the child to end; nullopt if it is still running after `timeout`.
  std::optional<exit_status> wait_for(std::chrono::milliseconds timeout);
  exit_status wait();
  // SIGTERM, then SIGKILL after `grace`.
  exit_status stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  explicit child_process(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

}  // namespace budstikke::support
