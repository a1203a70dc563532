#include <catch2/catch.hpp>

#include <chrono>

#include "adapters/path.hpp"

using namespace budstikke::adapters;
using namespace std::chrono_literals;

namespace {

const budstikke::support::backoff probes{
    .initial = 100ms, .cap = 10s, .spread = budstikke::support::jitter::equal, .floor = 100ms};

}  // namespace

TEST_CASE("path: up, suspended by a failure, probed when due, up again after a good probe") {
  path_health h;
  const auto t0 = path_health::clock::time_point{} + 1h;
  CHECK(h.usable());
  const auto g0 = h.generation();

  CHECK(h.failed("cannot connect", t0, 0, probes));
  auto v = h.snapshot();
  CHECK(v.status == path_status::suspended);
  CHECK(v.reason == "cannot connect");
  CHECK(v.since == t0);
  CHECK(v.suspensions == 1);
  CHECK(v.next_probe >= t0 + 100ms);  // equal jitter of the first bound, never below the floor
  CHECK(v.next_probe <= t0 + 100ms);
  CHECK(h.generation() > g0);

  // Not before it is due, and one taker only.
  CHECK_FALSE(h.take_probe(t0 + 50ms, 5s));
  CHECK(h.take_probe(v.next_probe, 5s));
  CHECK(h.snapshot().status == path_status::probing);
  CHECK_FALSE(h.take_probe(v.next_probe + 1ms, 5s));
  CHECK_FALSE(h.usable());

  CHECK(h.succeeded());
  v = h.snapshot();
  CHECK(v.status == path_status::up);
  CHECK(v.reason.empty());
  CHECK_FALSE(h.succeeded());  // no change, no new generation
}

TEST_CASE("path: failed probes wait longer each time, up to the cap; others failing meanwhile change nothing") {
  path_health h;
  auto now = path_health::clock::time_point{} + 1h;
  CHECK(h.failed("connection refused", now, 7, probes));
  // Four more connections of other shards fail at once: still one suspension, same probe time.
  const auto first_probe = h.snapshot().next_probe;
  for (int i = 0; i < 4; ++i) CHECK_FALSE(h.failed("connection refused", now, 99, probes));
  CHECK(h.snapshot().next_probe == first_probe);
  CHECK(h.snapshot().suspensions == 1);

  std::chrono::milliseconds previous_bound = 100ms;
  for (int probe = 2; probe <= 10; ++probe) {
    now = h.snapshot().next_probe;
    REQUIRE(h.take_probe(now, 5s));
    const auto gen = h.generation();
    CHECK_FALSE(h.failed("connection refused", now, 12345, probes));  // same reason: not a change worth a log line
    CHECK(h.generation() > gen);                               // but a new probe time
    const auto wait = h.snapshot().next_probe - now;
    const auto bound = std::min<std::chrono::milliseconds>(previous_bound * 2, 10s);
    CHECK(wait >= bound / 2);
    CHECK(wait <= bound);
    previous_bound = bound;
  }
  CHECK(previous_bound == 10s);
  CHECK(h.snapshot().suspensions == 1);
}

TEST_CASE("path: a new reason is a change; a probe nobody answers is given to another taker") {
  path_health h;
  const auto t0 = path_health::clock::time_point{} + 1h;
  CHECK(h.failed("cannot connect", t0, 0, probes));
  CHECK(h.failed("TLS handshake failed: certificate verify failed", t0 + 1ms, 0, probes));
  CHECK(h.snapshot().reason == "TLS handshake failed: certificate verify failed");
  const auto due = h.snapshot().next_probe;
  REQUIRE(h.take_probe(due, 5s));
  CHECK_FALSE(h.take_probe(due + 4s, 5s));
  CHECK(h.take_probe(due + 5s, 5s));  // the first taker went silent (a shard that stopped)
}

TEST_CASE("path: one health per name in a registry, shared by whoever asks") {
  path_registry paths;
  auto a = paths.at("127.0.0.1:2525");
  auto b = paths.at("127.0.0.1:2526");
  CHECK(a != b);
  CHECK(paths.at("127.0.0.1:2525") == a);
  a->failed("cannot connect", path_health::clock::now(), 0, probes);
  CHECK_FALSE(paths.at("127.0.0.1:2525")->usable());
  CHECK(b->usable());
}
