// The GCRA script against a real redis-server, with the injectable clock (explicit `now`): the
// exact grants and waits at the edges, then simulated consumers over seconds at 1 ms steps
// whose grants must stay within the rate in every sliding 1-second window.
#include <algorithm>
#include <functional>
#include <random>

#include "queue/rate_limit.hpp"
#include "queue/redis.hpp"
#include "queue/schema.hpp"
#include "tests/queue/redis_session.hpp"

using namespace budstikke;
using namespace budstikke::testing;
using queue::token_bucket;

namespace {

constexpr std::int64_t t0 = 1'780'000'000'000'000;  // µs since the epoch, a day in 2026
constexpr std::int64_t ms = 1000;

// A real Redis and synchronous calls of the script through queue::connection.
class script_runner {
 public:
  std::vector<queue::reply_ptr> exec(const queue::request& req, int which = 0) { return session_.exec(req, which); }

  queue::token_grant take(const std::vector<const token_bucket*>& buckets, std::int64_t wanted,
                          std::optional<std::int64_t> now, int which = 0) {
    queue::request req;
    queue::append_take_tokens(req, buckets, wanted, now);
    auto replies = exec(req, which);
    INFO(queue::as_string(replies[0].get()));
    auto g = queue::parse_token_grant(replies[0].get());
    REQUIRE(g);
    return *g;
  }

 private:
  redis_session session_;
};

token_bucket bucket(const std::string& name, double rate, std::int64_t burst_ms) {
  return queue::make_token_bucket(queue::keys("t:").rate_bucket(name), rate, std::chrono::milliseconds(burst_ms));
}

// grants[i]: tokens granted at millisecond i. Counts in every window [i, i + 1000).
struct window_counts {
  int max = 0;
  int min = 1 << 30;
};
window_counts sliding(const std::vector<int>& grants, std::size_t from, std::size_t to) {
  window_counts w;
  int sum = 0;
  for (std::size_t i = 0; i < grants.size(); ++i) {
    sum += grants[i];
    if (i >= 1000) sum -= grants[i - 1000];
    if (i + 1 >= 1000) {  // the window [i - 999, i]
      std::size_t start = i - 999;
      w.max = std::max(w.max, sum);
      if (start >= from && i < to) w.min = std::min(w.min, sum);
    }
  }
  return w;
}

// A consumer with `demand(ms)` new messages arriving at each millisecond, asking for up to
// `batch` tokens whenever messages wait and the last answer's wait has passed.
struct consumer {
  std::vector<const token_bucket*> buckets;
  std::int64_t batch = 10;
  int connection = 0;
  std::int64_t queued = 0;
  std::int64_t next_try = 0;
  std::int64_t calls = 0;
  std::vector<int> grants;
};

void step(script_runner& redis, consumer& c, std::int64_t now, std::size_t i) {
  if (c.queued == 0 || now < c.next_try) return;
  auto g = redis.take(c.buckets, std::min(c.batch, c.queued), now, c.connection);
  ++c.calls;
  c.grants[i] += static_cast<int>(g.granted);
  c.queued -= g.granted;
  if (g.limiting >= 0) c.next_try = now + g.wait.count();
}

}  // namespace

TEST_CASE("rate limit script: exact grants and waits at the edges") {
  script_runner redis;
  SECTION("no burst: one token per interval, the wait to the microsecond") {
    auto b = bucket("edge", 100, 0);
    auto g = redis.take({&b}, 5, t0);
    CHECK(g.granted == 1);
    CHECK(g.wait.count() == 10000);
    CHECK(g.limiting == 0);
    g = redis.take({&b}, 5, t0 + 9999);
    CHECK(g.granted == 0);
    CHECK(g.wait.count() == 1);
    g = redis.take({&b}, 1, t0 + 10000);
    CHECK(g.granted == 1);
    CHECK(g.limiting == -1);  // everything asked was granted
    CHECK(g.wait.count() == 0);
  }
  SECTION("a 20 ms burst at 100/s: three at once, then the steady pace") {
    auto b = bucket("burst", 100, 20);
    auto g = redis.take({&b}, 10, t0);
    CHECK(g.granted == 3);
    CHECK(g.wait.count() == 10000);
    g = redis.take({&b}, 10, t0 + 10000);
    CHECK(g.granted == 1);
    // Idle for a second: the bucket is full again, but never fuller than the burst.
    g = redis.take({&b}, 10, t0 + 1'000'000);
    CHECK(g.granted == 3);
  }
  SECTION("fractional rates: 0.5/s is one every two seconds (20 ms early at most)") {
    auto b = bucket("slow", 0.5, 20);
    CHECK(redis.take({&b}, 3, t0).granted == 1);
    auto g = redis.take({&b}, 3, t0 + 1'979'000);
    CHECK(g.granted == 0);
    CHECK(g.wait.count() == 1000);
    CHECK(redis.take({&b}, 3, t0 + 1'980'000).granted == 1);
  }
  SECTION("several buckets: the smallest grant, every bucket charged, the longest wait named") {
    auto global = bucket("global", 1000, 0), domain = bucket("domain:gmail.com", 100, 0);
    auto g = redis.take({&global, &domain}, 5, t0);
    CHECK(g.granted == 1);
    CHECK(g.limiting == 1);
    CHECK(g.wait.count() == 10000);
    // The global bucket was charged too: another group passing only it waits a millisecond.
    g = redis.take({&global}, 5, t0);
    CHECK(g.granted == 0);
    CHECK(g.wait.count() == 1000);
  }
  SECTION("Redis's own clock, the key under the {rate} hash tag, and its expiry") {
    auto b = bucket("clock", 100, 20);
    auto g = redis.take({&b}, 10, std::nullopt);
    CHECK(g.granted == 3);
    CHECK(g.wait.count() > 0);
    CHECK(g.wait.count() <= 10000);
    queue::request req;
    req.command("PTTL", "t:{rate}:clock");
    auto replies = redis.exec(req);
    auto ttl = queue::as_integer(replies[0].get());
    REQUIRE(ttl);
    CHECK(*ttl > 1000);   // TAT (30 ms ahead) plus a second
    CHECK(*ttl <= 1030);
  }
}

TEST_CASE("rate limit script: a greedy consumer gets 95..105 in every 1-second window at 100/s") {
  script_runner redis;
  auto b = bucket("greedy", 100, 20);
  // Greedy and deaf to the waits: it asks every millisecond, so the whole run is one pipeline.
  queue::request req;
  constexpr std::size_t steps = 10'000;
  for (std::size_t i = 0; i < steps; ++i) queue::append_take_tokens(req, {&b}, 10, t0 + static_cast<std::int64_t>(i) * ms);
  auto replies = redis.exec(req);
  std::vector<int> grants(steps);
  int total = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    auto g = queue::parse_token_grant(replies[i].get());
    REQUIRE(g);
    grants[i] = static_cast<int>(g->granted);
    total += grants[i];
  }
  auto w = sliding(grants, 1000, steps);
  CHECK(w.max <= 105);
  CHECK(w.max == 102);  // 100 plus the 20 ms burst
  CHECK(w.min >= 95);
  CHECK(total == 1002);  // 10 s at 100/s, plus the burst at the start
}

TEST_CASE("rate limit script: bursty work, a consumer that sleeps until the next token") {
  script_runner redis;
  auto b = bucket("bursty", 100, 40);
  consumer c;
  c.buckets = {&b};
  constexpr std::size_t steps = 10'000;
  c.grants.assign(steps, 0);
  std::vector<bool> waiting(steps);
  std::minstd_rand rng(7);
  for (std::size_t i = 0; i < steps; ++i) {
    // Bursts of 50..400 messages at random moments, idle stretches between.
    if (i % 2500 == 0) c.queued += std::uniform_int_distribution<int>(50, 400)(rng);
    waiting[i] = c.queued > 0;
    step(redis, c, t0 + static_cast<std::int64_t>(i) * ms, i);
  }
  auto w = sliding(c.grants, 0, steps);
  CHECK(w.max <= 105);
  // While work waited throughout a window (after its first second of waiting), it got >= 95.
  int worst = 1 << 30;
  int sum = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    sum += c.grants[i];
    if (i >= 1000) sum -= c.grants[i - 1000];
    if (i >= 1000 && std::all_of(waiting.begin() + static_cast<long>(i - 1000), waiting.begin() + static_cast<long>(i + 1),
                                 [](bool b) { return b; }))
      worst = std::min(worst, sum);
  }
  REQUIRE(worst < (1 << 30));  // some window had work waiting throughout
  CHECK(worst >= 95);
  // It slept until the next token rather than asking every millisecond.
  CHECK(c.calls < 1500);
}

TEST_CASE("rate limit script: two processes on two connections share one bucket") {
  script_runner redis;
  auto b = bucket("shared", 100, 20);
  consumer a, z;
  a.buckets = z.buckets = {&b};
  z.connection = 1;
  a.queued = z.queued = 1'000'000;
  constexpr std::size_t steps = 6'000;
  a.grants.assign(steps, 0);
  z.grants.assign(steps, 0);
  std::minstd_rand rng(11);
  std::uniform_int_distribution<std::int64_t> jitter(0, 999);
  for (std::size_t i = 0; i < steps; ++i) {
    auto now = t0 + static_cast<std::int64_t>(i) * ms;
    // One clock (Redis's), each call at a random moment within the millisecond, in random order.
    std::int64_t ta = now + jitter(rng), tz = now + jitter(rng);
    if (ta <= tz) {
      step(redis, a, ta, i);
      step(redis, z, tz, i);
    } else {
      step(redis, z, tz, i);
      step(redis, a, ta, i);
    }
  }
  std::vector<int> total(steps);
  int sum_a = 0, sum_z = 0;
  for (std::size_t i = 0; i < steps; ++i) {
    total[i] = a.grants[i] + z.grants[i];
    sum_a += a.grants[i];
    sum_z += z.grants[i];
  }
  auto w = sliding(total, 1000, steps);
  CHECK(w.max <= 105);
  CHECK(w.min >= 95);
  CHECK(sum_a > 100);
  CHECK(sum_z > 100);
}

TEST_CASE("rate limit script: a domain bucket inside the global one") {
  script_runner redis;
  auto global = bucket("g", 100, 20), domain = bucket("domain:gmail.com", 30, 20);
  consumer gmail, other;
  gmail.buckets = {&global, &domain};
  other.buckets = {&global};
  gmail.queued = other.queued = 1'000'000;
  constexpr std::size_t steps = 5'000;
  gmail.grants.assign(steps, 0);
  other.grants.assign(steps, 0);
  for (std::size_t i = 0; i < steps; ++i) {
    auto now = t0 + static_cast<std::int64_t>(i) * ms;
    step(redis, gmail, now, i);
    step(redis, other, now, i);
  }
  std::vector<int> total(steps);
  for (std::size_t i = 0; i < steps; ++i) total[i] = gmail.grants[i] + other.grants[i];
  auto wg = sliding(gmail.grants, 1000, steps);
  auto wt = sliding(total, 1000, steps);
  CHECK(wg.max <= 31);   // 30/s plus its 20 ms burst (0.6 of a token: none)
  CHECK(wg.min >= 29);
  CHECK(wt.max <= 105);
  CHECK(wt.min >= 95);
}
