#include "adapters/path.hpp"

#include <algorithm>

namespace budstikke::adapters {

const char* to_string(path_status s) noexcept {
  switch (s) {
    case path_status::up: return "up";
    case path_status::suspended: return "suspended";
    case path_status::probing: return "probing";
  }
  return "unknown";
}

bool path_health::succeeded() {
  std::lock_guard lock(mutex_);
  failures_ = 0;
  if (state_.status == path_status::up) return false;
  state_.status = path_status::up;
  state_.reason.clear();
  state_.next_probe = {};
  ++state_.generation;
  return true;
}

bool path_health::failed(std::string_view reason, clock::time_point now, std::uint64_t random,
                         const support::backoff& probes) {
  std::lock_guard lock(mutex_);
  const bool was_up = state_.status == path_status::up;
  const bool probing = state_.status == path_status::probing;
  // Several connections of several shards fail at once when a relay goes away: the first
  // suspends it; the others only keep it suspended. A failed probe doubles the wait.
  if (was_up || probing) {
    ++failures_;
    state_.next_probe = now + probes.delay(failures_, random);
  }
  if (was_up) {
    state_.since = now;
    ++state_.suspensions;
  }
  const bool changed = was_up || reason != state_.reason;
  state_.status = path_status::suspended;
  state_.reason.assign(reason);
  if (changed || probing) ++state_.generation;
  return changed;
}

bool path_health::take_probe(clock::time_point now, std::chrono::milliseconds probe_timeout) {
  std::lock_guard lock(mutex_);
  const bool due = state_.status == path_status::suspended && now >= state_.next_probe;
  const bool abandoned = state_.status == path_status::probing && now - probe_taken_ >= probe_timeout;
  if (!due && !abandoned) return false;
  state_.status = path_status::probing;
  probe_taken_ = now;
  ++state_.generation;
  return true;
}

std::chrono::milliseconds time_until(path_health::clock::time_point t, path_health::clock::time_point now) {
  return std::chrono::ceil<std::chrono::milliseconds>(std::max(path_health::clock::duration::zero(), t - now));
}

path_event event_of(std::string_view kind, std::string_view name, const path_health::view& view,
                    path_health::clock::time_point now) {
  return {.kind = kind,
          .name = name,
          .usable = view.usable(),
          .any_usable = view.usable(),
          .reason = view.reason,
          .since = view.since,
          .next_probe = view.usable() ? std::chrono::milliseconds(0) : time_until(view.next_probe, now)};
}

path_health::view path_health::snapshot() const {
  std::lock_guard lock(mutex_);
  return state_;
}

std::uint64_t path_health::generation() const {
  std::lock_guard lock(mutex_);
  return state_.generation;
}

bool path_health::usable() const {
  std::lock_guard lock(mutex_);
  return state_.status == path_status::up;
}

}  // namespace budstikke::adapters

namespace budstikke::adapters {

std::shared_ptr<path_health> path_registry::at(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = paths_.find(name);
  if (it == paths_.end()) it = paths_.emplace(std::string(name), std::make_shared<path_health>()).first;
  return it->second;
}

}  // namespace budstikke::adapters
