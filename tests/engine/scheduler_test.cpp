// What a shard reads next, without Redis: its own backlog first, then dead consumers', the urgent
// lane, fair shares between tenants and campaigns, blocking reads, pause/resume and quiet hours.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>

#include "engine/scheduler.hpp"

using namespace budstikke;
using namespace budstikke::engine;
using namespace std::chrono_literals;

namespace {

scheduler_options options() {
  scheduler_options o;
  o.window = 100;
  o.read_batch = 10;
  o.consumer = "host-0";
  o.claim_min_idle = 15000ms;
  return o;
}

campaign& add(scheduler& s, std::string id, std::string tenant = "default", int priority = 5) {
  auto c = std::make_shared<campaign>();
  c->def.id = std::move(id);
  c->def.tenant = std::move(tenant);
  c->def.priority = priority;
  c->stream_key = "s:" + c->def.id;
  return s.add(std::move(c));
}

// A campaign whose own backlog has been taken up: it reads new entries from now on.
campaign& add_recovered(scheduler& s, std::string id, std::string tenant = "default", int priority = 5) {
  campaign& c = add(s, std::move(id), std::move(tenant), priority);
  c.own_recovered = true;
  return c;
}

}  // namespace

TEST_CASE("scheduler: a campaign's own backlog is taken up first, from the start, then its new entries") {
  scheduler s(options());
  campaign& c = add(s, "c1");
  auto plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::recover);
  CHECK(plan.target.get() == &c);
  CHECK(plan.consumer == "host-0");
  CHECK(plan.min_idle == 0ms);
  CHECK(plan.cursor == "-");
  CHECK(plan.count == 10);
  s.recovered_up_to(c, "5-0");
  plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::recover);
  CHECK(plan.cursor == "(5-0");
  s.recovered_all(c);
  CHECK(c.own_recovered);
  plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::read);
  CHECK(plan.target.get() == &c);
  CHECK(plan.count == 10);
}

TEST_CASE("scheduler: a dead consumer's entries are claimed once they are idle long enough") {
  scheduler s(options());
  campaign& c = add_recovered(s, "c1");
  CHECK(s.dead_consumer(c, "host-7"));
  CHECK_FALSE(s.dead_consumer(c, "host-7"));  // queued already
  CHECK_FALSE(s.dead_consumer(c, "host-0"));  // never ourselves
  auto plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::recover);
  CHECK(plan.consumer == "host-7");
  CHECK(plan.min_idle == 15000ms);
  s.recovered_all(c);
  CHECK(s.next(100).what == read_plan::kind::read);
}

TEST_CASE("scheduler: a failed read re-takes the own backlog once the campaign's slots are drained") {
  scheduler s(options());
  campaign& c = add_recovered(s, "c1");
  std::vector<std::shared_ptr<campaign>> affected{s.shared("c1")};
  s.read_failed(affected);
  CHECK(c.recovering());
  c.held = 3;
  // Still holding entries: its own backlog cannot be told from what it holds; nothing to read.
  CHECK(s.next(100).what == read_plan::kind::idle);
  c.held = 0;
  auto plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::recover);
  CHECK(plan.consumer == "host-0");
  CHECK(plan.cursor == "-");
}

TEST_CASE("scheduler: the urgent lane reads first and may use the reserved slots") {
  scheduler s(options());
  CHECK(s.urgent_reserve() == 10);  // min(read_batch, window / 4)
  add_recovered(s, "news", "default", 5);
  campaign& urgent = add_recovered(s, "sms", "default", 9);
  auto plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::read);
  CHECK(plan.target.get() == &urgent);
  // Few slots free: only the urgent lane may take them.
  plan = s.next(15);
  REQUIRE(plan.what == read_plan::kind::read);
  CHECK(plan.target.get() == &urgent);
  CHECK(plan.count == 10);
  s.read(urgent, 0);
  CHECK(urgent.exhausted);
  CHECK(s.next(15).what == read_plan::kind::wait_for_slots);
  s.entries_arrived(urgent);
  plan = s.next(3);
  REQUIRE(plan.what == read_plan::kind::read);
  CHECK(plan.count == 3);
}

TEST_CASE("scheduler: tenants share reads by weight, a tenant's campaigns by priority") {
  auto o = options();
  o.tenant_weights["oslo"] = 3;
  scheduler s(o);
  campaign& oslo = add_recovered(s, "oslo-news", "oslo", 5);
  campaign& bergen_a = add_recovered(s, "bergen-a", "bergen", 5);
  campaign& bergen_b = add_recovered(s, "bergen-b", "bergen", 5);
  std::map<campaign*, int> picks;
  for (int i = 0; i < 400; ++i) {
    auto plan = s.next(100);
    REQUIRE(plan.what == read_plan::kind::read);
    ++picks[plan.target.get()];
  }
  CHECK(picks[&oslo] == 300);  // 3:1, although bergen sends two campaigns
  CHECK(picks[&bergen_a] == 50);
  CHECK(picks[&bergen_b] == 50);

  scheduler p(options());
  campaign& high = add_recovered(p, "high", "t", 8);  // weight 9
  campaign& low = add_recovered(p, "low", "t", 2);    // weight 3
  picks.clear();
  for (int i = 0; i < 120; ++i) ++picks[p.next(100).target.get()];
  CHECK(picks[&high] == 90);
  CHECK(picks[&low] == 30);
}

TEST_CASE("scheduler: with nothing to read at once it blocks on every stream, or is idle") {
  scheduler s(options());
  CHECK(s.next(100).what == read_plan::kind::idle);
  campaign& a = add_recovered(s, "a");
  campaign& b = add_recovered(s, "b");
  s.read(a, 0);
  s.read(b, 0);
  auto plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::block);
  CHECK(plan.streams.size() == 2);
  CHECK(plan.count == 10);  // min(want, (free - reserve) / streams)
  plan = s.next(19);  // 9 beyond the urgent reserve: less than one read's worth
  REQUIRE(plan.what == read_plan::kind::wait_for_slots);
  // A campaign that is not served (paused, quiet, no adapter) is not blocked on.
  b.active = false;
  plan = s.next(100);
  REQUIRE(plan.what == read_plan::kind::block);
  REQUIRE(plan.streams.size() == 1);
  CHECK(plan.streams[0].get() == &a);
  s.read_refused(a);
  CHECK(a.mode == serve_mode::not_served);
  CHECK(s.next(100).what == read_plan::kind::idle);
}

TEST_CASE("scheduler: pause and resume as the registry says, and forgetting finished campaigns") {
  scheduler s(options());
  campaign& c = add_recovered(s, "c1");
  s.read(c, 0);
  CHECK(s.apply_state(c, "active") == scheduler::state_change::none);
  CHECK(s.apply_state(c, "paused") == scheduler::state_change::paused);
  CHECK_FALSE(c.served());
  CHECK(s.apply_state(c, "cancelled") == scheduler::state_change::none);
  CHECK(s.apply_state(c, "active") == scheduler::state_change::resumed);
  CHECK_FALSE(c.exhausted);  // read again at once
  c.in_registry = false;
  c.held = 1;
  s.forget_gone();
  CHECK(s.find("c1") == &c);
  c.held = 0;
  s.forget_gone();
  CHECK(s.find("c1") == nullptr);
}

TEST_CASE("scheduler: quiet hours stop reading a campaign and let it go on afterwards") {
  scheduler s(options());
  campaign& c = add_recovered(s, "winback");
  c.def.kind = queue::channel::sms;
  c.def.category = "winback";
  std::vector<quiet_rule> rules(1);
  rules[0].channel = queue::channel::sms;
  rules[0].from = 21 * 3600;
  rules[0].to = 8 * 3600;
  rules[0].timezone = "UTC";
  auto at = [](int hour) { return sys_ms(std::chrono::hours(24 * 20000 + hour)); };
  CHECK(s.evaluate_quiet(c, rules, at(12)) == scheduler::quiet_change::none);
  CHECK(c.quiet_change == at(21));
  CHECK(s.evaluate_quiet(c, rules, at(20)) == scheduler::quiet_change::none);  // not due for evaluation yet
  CHECK(s.evaluate_quiet(c, rules, at(22)) == scheduler::quiet_change::entered);
  CHECK_FALSE(c.served());
  CHECK(s.next(100).what == read_plan::kind::idle);
  CHECK(c.quiet_change == at(24 + 8));
  s.read(c, 0);
  CHECK(s.evaluate_quiet(c, rules, at(24 + 8)) == scheduler::quiet_change::left);
  CHECK(c.served());
  CHECK_FALSE(c.exhausted);
}
