// The slot state machine without Redis or sockets: every transition, crash recovery, pause in
// each state, a rate limit that says wait, retries and their end. Time is passed in.
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/pipeline.hpp"
#include "engine/retry.hpp"

using namespace budstikke;
using namespace budstikke::engine;
using queue::final_state;
using namespace std::chrono_literals;

namespace {

struct observer final : pipeline_observer {
  std::size_t admitted_count = 0, recovered_count = 0, handed = 0;
  std::vector<std::pair<std::string, std::string>> counts;  // entry id -> what was counted
  std::vector<std::chrono::steady_clock::duration> waits;
  std::size_t answers = 0;
  void admitted(const campaign&, const slot&, bool recovered) override {
    ++admitted_count;
    if (recovered) ++recovered_count;
  }
  void waited_for_tokens(metrics::limiter, std::chrono::steady_clock::duration w) override { waits.push_back(w); }
  void answered(const campaign&, const slot&, std::chrono::steady_clock::duration) override { ++answers; }
  void counted(const campaign&, const slot& s) override {
    counts.emplace_back(s.entry_id, s.kind == record_kind::retry ? "retry" : std::string(queue::to_string(s.outcome)));
  }
  void handed_back(const slot&) override { ++handed; }
};

config test_config() { return config{}; }

// A campaign as the shard makes it, with templates compiled.
std::unique_ptr<campaign> make_campaign(const config& cfg, std::string id, queue::channel kind = queue::channel::email,
                                        int priority = 5, std::string category = "tariff") {
  auto c = std::make_unique<campaign>();
  c->def.id = std::move(id);
  c->def.kind = kind;
  c->def.priority = priority;
  c->def.category = std::move(category);
  c->def.from_address = "post@forbundet.example";
  if (kind == queue::channel::email) {
    c->def.templates = {{"subject", "Hei {{name}}"}, {"text", "Hei {{name}}\n"}};
  } else {
    c->def.templates = {{"sms", "Hei {{name}}"}};
  }
  c->renderer = campaign_renderer::compile(c->def, cfg).value();
  c->policy = &cfg.policy(c->def.category);
  c->retry = {.max_attempts = 3, .first = std::chrono::milliseconds(1000), .cap = std::chrono::milliseconds(60000)};
  c->stream_key = "s:" + c->def.id;
  c->inflight_key = "i:" + c->def.id;
  c->urgent = priority >= urgent_priority;
  return c;
}

queue::stream_entry entry(std::string_view id, std::string_view to = "kari@avd1.example", std::string_view data = R"({"name":"Kari"})") {
  queue::stream_entry e;
  e.id = id;
  e.to = to;
  e.member = "M1";
  e.data = data;
  return e;
}

std::size_t in_state(const pipeline& p, slot_state s) { return p.census()[static_cast<std::size_t>(s)]; }

// Every slot is in exactly one state, and the counters agree with the census.
void check_invariants(const pipeline& p) {
  auto n = p.census();
  std::size_t total = 0;
  for (auto k : n) total += k;
  CHECK(total == p.capacity());
  CHECK(n[static_cast<std::size_t>(slot_state::free)] == p.free_slots());
  CHECK(n[static_cast<std::size_t>(slot_state::on_wire)] == p.on_wire());
  CHECK(n[static_cast<std::size_t>(slot_state::ready)] == p.ready());
  CHECK(n[static_cast<std::size_t>(slot_state::marking)] == p.marking());
  CHECK(n[static_cast<std::size_t>(slot_state::limited)] == p.limited());
  CHECK(n[static_cast<std::size_t>(slot_state::answered)] == p.records_waiting());
}

struct fixture {
  config cfg = test_config();
  queue::keys keys;
  limit_plan no_limits{limits_config{}, keys};
  observer obs;
  pipeline_options opt = [] {
    pipeline_options o;
    o.window = 8;
    o.send_window = 4;
    return o;
  }();
  std::unique_ptr<pipeline> p = std::make_unique<pipeline>(opt, no_limits, obs);
  std::chrono::steady_clock::time_point t0{std::chrono::seconds(1000)};
  static constexpr std::int64_t wall0 = 1796176350000;  // 2026-12-02, ms since the epoch

  // ready -> marking -> on_wire for everything ready, consent fine.
  std::vector<std::uint32_t> mark_all(const std::optional<std::string>& problem = std::nullopt, bool stopping = false) {
    std::vector<std::uint32_t> batch = p->take_mark_batch();
    for (auto idx : batch) p->marked(idx, problem, stopping, t0);
    p->batch_done();
    return batch;
  }
  adapters::delivery answer(std::uint32_t idx, adapters::outcome o, std::string reply = "250 ok",
                            std::chrono::milliseconds retry_after = 0ms) {
    adapters::delivery d = p->at(idx).d;
    d.result = o;
    d.reply = std::move(reply);
    d.retry_after = retry_after;
    return d;
  }
  // Records everything waiting; Redis counts each record as `how`.
  void record_all(queue::record_count how = queue::record_count::counted, bool finished = false) {
    for (auto& b : p->take_records()) {
      queue::record_result r;
      r.finished = finished;
      r.counted.assign(b.slots.size(), how);
      p->recorded(b, r);
    }
  }
};

}  // namespace

TEST_CASE("pipeline: read, marked, on the wire, answered, recorded, free again") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  f.p->admit(*c, entry("1-0"), nullptr, f.t0);
  CHECK(in_state(*f.p, slot_state::ready) == 1);
  CHECK(c->held == 1);
  CHECK(f.p->wants_marks());
  check_invariants(*f.p);

  const auto& batch = f.p->take_mark_batch();
  REQUIRE(batch.size() == 1);
  const auto idx = batch[0];
  CHECK(f.p->at(idx).state == slot_state::marking);
  CHECK(f.p->marking() == 1);
  check_invariants(*f.p);
  f.p->marked(idx, std::nullopt, false, f.t0);
  f.p->batch_done();
  CHECK(f.p->at(idx).state == slot_state::on_wire);
  CHECK(f.p->at(idx).marked);
  CHECK(f.p->at(idx).attempts == 1);
  CHECK(f.p->sends() == std::vector<std::uint32_t>{idx});
  f.p->sends().clear();
  check_invariants(*f.p);

  f.p->answered(f.answer(idx, adapters::outcome::accepted), 0, f.t0 + 5ms, f.wall0);
  CHECK(f.p->at(idx).state == slot_state::answered);
  CHECK(f.p->records_waiting() == 1);
  CHECK(f.obs.answers == 1);
  check_invariants(*f.p);

  auto& records = f.p->take_records();
  REQUIRE(records.size() == 1);
  CHECK(records[0].owner == c.get());
  CHECK(f.p->at(idx).state == slot_state::recording);
  CHECK(f.p->records_waiting() == 0);
  check_invariants(*f.p);
  queue::record_result r;
  r.counted = {queue::record_count::counted};
  f.p->recorded(records[0], r);
  CHECK(f.p->at(idx).state == slot_state::free);
  CHECK(c->held == 0);
  CHECK(f.p->free_slots() == f.p->capacity());
  REQUIRE(f.obs.counts.size() == 1);
  CHECK(f.obs.counts[0] == std::pair<std::string, std::string>{"1-0", "sent"});
  check_invariants(*f.p);
}

TEST_CASE("pipeline: what cannot be sent is answered at once, with the reason") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  auto sms = make_campaign(f.cfg, "sms", queue::channel::sms);
  auto broken = make_campaign(f.cfg, "broken");
  broken->mode = serve_mode::fail_all;
  broken->unusable_reason = "campaign templates unusable: subject:1:3: unclosed tag";

  f.p->admit(*broken, entry("1-0"), nullptr, f.t0);
  auto malformed = entry("2-0");
  malformed.well_formed = false;
  f.p->admit(*c, malformed, nullptr, f.t0);
  std::string big(65 * 1024, 'x');
  std::string big_data = R"({"name":")" + big + R"("})";
  f.p->admit(*c, entry("3-0", "kari@avd1.example", big_data), nullptr, f.t0);
  f.p->admit(*c, entry("4-0", "not an address"), nullptr, f.t0);
  f.p->admit(*sms, entry("5-0", "12"), nullptr, f.t0);
  // A portal writing the stream directly is held to enqueue's bounds.
  std::string long_to(320, 'k');
  long_to += "@avd1.example";
  f.p->admit(*c, entry("6-0", long_to), nullptr, f.t0);
  std::string long_id(257, 'M');
  auto long_member = entry("7-0");
  long_member.member = long_id;
  f.p->admit(*c, long_member, nullptr, f.t0);
  // What the mover puts back for a retry-set member it could not use.
  auto unusable = entry("8-0");
  unusable.malformed = "unusable retry: not JSON";
  f.p->admit(*c, unusable, nullptr, f.t0);
  CHECK(f.p->records_waiting() == 8);
  CHECK(f.p->ready() == 0);
  check_invariants(*f.p);

  std::map<std::string, std::pair<final_state, std::string>> got;
  for (std::uint32_t i = 0; i < f.p->capacity(); ++i) {
    const auto& s = f.p->at(i);
    if (s.state == slot_state::answered) got[s.entry_id] = {s.outcome, s.reason};
  }
  CHECK(got["1-0"] == std::pair{final_state::failed, broken->unusable_reason});
  CHECK(got["2-0"] == std::pair{final_state::failed, std::string("malformed stream entry: field 'to' missing or empty")});
  CHECK(got["3-0"] == std::pair{final_state::failed, std::string("template data larger than 64 KiB")});
  CHECK(got["4-0"].first == final_state::skipped);
  CHECK(got["5-0"].first == final_state::skipped);
  CHECK(got["6-0"] == std::pair{final_state::failed, std::string("'to' longer than 320 bytes")});
  CHECK(got["7-0"] == std::pair{final_state::failed, std::string("'id' (member id) longer than 256 bytes")});
  CHECK(got["8-0"] == std::pair{final_state::failed, std::string("unusable retry: not JSON")});
  for (std::uint32_t i = 0; i < f.p->capacity(); ++i)
    if (f.p->at(i).entry_id == "7-0") CHECK(f.p->at(i).member.empty());
  f.record_all();
  CHECK(f.obs.counts.size() == 8);
  CHECK(f.p->free_slots() == f.p->capacity());
}

TEST_CASE("pipeline: crash recovery: poison, on the wire and not resent, resent without a new mark") {
  fixture f;
  auto c = make_campaign(f.cfg, "newsletter", queue::channel::email, 5, "newsletter");
  auto tariff = make_campaign(f.cfg, "tariff");
  f.cfg.categories["tariff"].resend_ambiguous_email = true;  // policy pointers see the change
  tariff->policy = &f.cfg.policy("tariff");

  recovery_info poison{5, false, "host-0"};
  f.p->admit(*c, entry("1-0"), &poison, f.t0);
  recovery_info on_wire{1, true, "host-0"};
  f.p->admit(*c, entry("2-0"), &on_wire, f.t0);
  f.p->admit(*tariff, entry("3-0"), &on_wire, f.t0);
  recovery_info never_left{2, false, "host-1"};
  f.p->admit(*c, entry("4-0"), &never_left, f.t0);
  CHECK(f.obs.recovered_count == 4);

  auto slot_of = [&](campaign& cc, std::string_view id) { return *f.p->find(cc, id); };
  CHECK(f.p->at(slot_of(*c, "1-0")).outcome == final_state::failed);
  CHECK(f.p->at(slot_of(*c, "1-0")).reason == "poison: read 5 times without an outcome");
  CHECK(f.p->at(slot_of(*c, "2-0")).outcome == final_state::ambiguous);
  CHECK(f.p->at(slot_of(*c, "2-0")).reason == "on the wire when consumer host-0 stopped; not resent (category newsletter)");
  // Resent: it keeps its mark, so it goes on the wire without a new one.
  const auto resent = slot_of(*tariff, "3-0");
  CHECK(f.p->at(resent).state == slot_state::on_wire);
  CHECK(f.p->at(resent).resent);
  CHECK(f.p->at(resent).marked);
  CHECK(f.p->sends() == std::vector<std::uint32_t>{resent});
  // Never on the wire: sent normally, through a mark.
  CHECK(f.p->at(slot_of(*c, "4-0")).state == slot_state::ready);
  check_invariants(*f.p);
}

TEST_CASE("pipeline: the consent verdict skips; a pause or a stop during marking hands back") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  f.p->admit(*c, entry("1-0"), nullptr, f.t0);
  f.mark_all(std::string("consent withdrawn 2026-11-30 (portal)"));
  CHECK(f.p->records_waiting() == 1);
  auto idx = *f.p->find(*c, "1-0");
  CHECK(f.p->at(idx).outcome == final_state::skipped);
  CHECK(f.p->at(idx).reason == "consent withdrawn 2026-11-30 (portal)");
  CHECK(f.p->sends().empty());
  f.record_all();

  // Paused while the mark was on its way: handed back, and its mark released through the recorder.
  f.p->admit(*c, entry("2-0"), nullptr, f.t0);
  const auto batch = f.p->take_mark_batch();
  c->active = false;
  for (auto i : batch) f.p->marked(i, std::nullopt, false, f.t0);
  f.p->batch_done();
  idx = *f.p->find(*c, "2-0");
  CHECK(f.p->at(idx).state == slot_state::answered);
  CHECK(f.p->at(idx).kind == record_kind::release);
  CHECK(f.obs.handed == 1);
  f.record_all(queue::record_count::not_counted);
  CHECK(f.obs.counts.size() == 1);  // a release is never counted
  c->active = true;

  // Stopping: nothing of the batch goes out, whatever the verdict.
  f.p->admit(*c, entry("3-0"), nullptr, f.t0);
  f.mark_all(std::nullopt, true);
  CHECK(f.p->sends().empty());
  CHECK(f.p->at(*f.p->find(*c, "3-0")).kind == record_kind::release);
  check_invariants(*f.p);
}

TEST_CASE("pipeline: a failed mark round trip puts the batch back in front, in order; when stopping, hands it back") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  for (auto id : {"1-0", "2-0", "3-0", "4-0", "5-0", "6-0"}) f.p->admit(*c, entry(id), nullptr, f.t0);
  const auto batch = f.p->take_mark_batch();
  CHECK(batch.size() == 4);  // the send window
  f.p->marks_failed(false);
  f.p->batch_done();
  CHECK(f.p->ready() == 6);
  CHECK(f.p->marking() == 0);
  const auto again = f.p->take_mark_batch();
  CHECK(std::vector<std::uint32_t>(again.begin(), again.end()) == std::vector<std::uint32_t>(batch.begin(), batch.end()));
  f.p->marks_failed(true);
  f.p->batch_done();
  // Not marked: they go straight back to free, their entries stay pending.
  CHECK(f.p->free_slots() == f.p->capacity() - 2);
  CHECK(f.obs.handed == 4);
  check_invariants(*f.p);
}

TEST_CASE("pipeline: a pause hands back what waits and lets what is on the wire finish") {
  fixture f;
  budstikke::limits_config lc;
  lc.global = 100;
  limit_plan limits(lc, f.keys);
  pipeline p(f.opt, limits, f.obs);
  auto c = make_campaign(f.cfg, "c1");
  auto other = make_campaign(f.cfg, "c2");
  for (auto id : {"1-0", "2-0", "3-0", "4-0"}) p.admit(*c, entry(id), nullptr, f.t0);
  p.admit(*other, entry("9-0"), nullptr, f.t0);
  CHECK(p.limited() == 5);
  // Tokens for two of c's: they get to the wire.
  auto& asks = p.token_asks(f.t0);
  REQUIRE(asks.size() == 1);
  queue::token_grant two{2, 0ms, -1};
  p.tokens_granted(*asks[0].group, two, f.t0);
  CHECK(p.ready() == 2);
  auto batch = p.take_mark_batch();
  for (auto i : batch) p.marked(i, std::nullopt, false, f.t0);
  p.batch_done();
  p.sends().clear();
  CHECK(p.on_wire() == 2);
  // One more of c's gets its token and waits for a mark; one of c's and the other's still wait for a token.
  queue::token_grant one{1, 0ms, -1};
  p.tokens_granted(*p.token_asks(f.t0)[0].group, one, f.t0);
  CHECK(p.ready() == 1);
  CHECK(p.limited() == 2);

  p.hold_back(*c);
  CHECK(c->recover_after_drain);
  CHECK(p.ready() == 0);       // handed back (not marked: straight to free)
  CHECK(p.limited() == 1);     // only the other campaign's
  CHECK(p.on_wire() == 2);     // on the wire: finishes
  CHECK(f.obs.handed == 2);
  CHECK(c->held == 2);
  check_invariants(p);
  for (std::uint32_t i = 0; i < p.capacity(); ++i) {
    if (p.at(i).state != slot_state::on_wire) continue;
    adapters::delivery d = p.at(i).d;
    d.result = adapters::outcome::accepted;
    p.answered(d, 0, f.t0, f.wall0);
  }
  CHECK(p.records_waiting() == 2);
}

TEST_CASE("pipeline: a limit that says wait holds its group until the next token, others go on") {
  fixture f;
  budstikke::limits_config lc;
  lc.domains["gmail.com"] = 10;
  limit_plan limits(lc, f.keys);
  pipeline p(f.opt, limits, f.obs);
  auto c = make_campaign(f.cfg, "c1");
  p.admit(*c, entry("1-0", "a@gmail.com"), nullptr, f.t0);
  p.admit(*c, entry("2-0", "b@gmail.com"), nullptr, f.t0);
  p.admit(*c, entry("3-0", "c@avd1.example"), nullptr, f.t0);  // no bucket applies
  CHECK(p.limited() == 2);
  CHECK(p.ready() == 1);
  CHECK(p.room_for_tokens());

  auto asks = p.token_asks(f.t0);
  REQUIRE(asks.size() == 1);
  CHECK(asks[0].wanted == 2);
  queue::token_grant none{0, 250ms, 0};
  p.tokens_granted(*asks[0].group, none, f.t0);
  CHECK(p.limited() == 2);
  CHECK(asks[0].group->held_by == metrics::limiter::domain);
  CHECK(p.until_tokens(f.t0) == 250ms);
  CHECK(p.token_asks(f.t0 + 100ms).empty());  // not before the token is due
  auto later = p.token_asks(f.t0 + 250ms);
  REQUIRE(later.size() == 1);
  queue::token_grant one{1, 100ms, 0};
  p.tokens_granted(*later[0].group, one, f.t0 + 250ms);
  CHECK(p.limited() == 1);
  CHECK(p.ready() == 2);
  REQUIRE(f.obs.waits.size() == 1);
  CHECK(f.obs.waits[0] == 250ms);
  // A refused script: the group asks again a second later.
  p.tokens_refused(*later[0].group, f.t0 + 300ms);
  CHECK(p.until_tokens(f.t0 + 300ms) == 1000ms);
  check_invariants(p);
  // Without waiting messages there is nothing to ask for.
  p.hand_back_waiting();
  CHECK(p.limited() == 0);
  CHECK(p.until_tokens(f.t0) == std::chrono::hours(24));
}

TEST_CASE("pipeline: transient answers retry with backoff until the attempts are used up; a pause is not an attempt") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  f.p->admit(*c, entry("1-0"), nullptr, f.t0);
  auto idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::transient, "451 4.3.0 try later"), 999999, f.t0, f.wall0);
  const auto& s = f.p->at(idx);
  CHECK(s.kind == record_kind::retry);
  CHECK(s.retry_in_ms >= 1000);  // the first retry: the first wait, plus up to a quarter
  CHECK(s.retry_in_ms <= 1250);
  CHECK(s.deferred_since_ms == f.wall0);  // the age of the deferral counts from here
  CHECK(s.reason == "451 4.3.0 try later");
  f.record_all();
  CHECK(f.obs.counts.back() == std::pair<std::string, std::string>{"1-0", "retry"});

  // The retry is due: Redis moved it back into the stream with its attempts so far.
  auto due = entry("7-0");
  due.attempt = 2;
  f.p->admit(*c, due, nullptr, f.t0);
  idx = f.mark_all()[0];
  CHECK(f.p->at(idx).attempts == 3);
  f.p->answered(f.answer(idx, adapters::outcome::transient, "451 4.3.0 try later"), 7, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::final);
  CHECK(f.p->at(idx).outcome == final_state::failed);
  CHECK(f.p->at(idx).reason == "gave up after 3 attempts: 451 4.3.0 try later");
  f.record_all();

  // A 429 with Retry-After: waits the pause, and does not use up an attempt.
  auto paused = entry("8-0");
  paused.attempt = 2;
  f.p->admit(*c, paused, nullptr, f.t0);
  idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::transient, "429 slow down", 2000ms), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::retry);
  CHECK(f.p->at(idx).attempts == 2);
  CHECK(f.p->at(idx).paused_retries == 1);
  CHECK(f.p->at(idx).retry_in_ms == 2000);
  f.record_all();

  // A retry whose entry vanished before it was recorded: Redis records it failed instead.
  f.p->admit(*c, entry("9-0"), nullptr, f.t0);
  idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::transient, "451"), 1, f.t0, f.wall0);
  f.record_all(queue::record_count::retry_failed);
  CHECK(f.obs.counts.back() == std::pair<std::string, std::string>{"9-0", "failed"});
  check_invariants(*f.p);
}

TEST_CASE("pipeline: a message deferred longer than max_retry_age is failed with its last reply") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  c->retry = {.max_attempts = 0, .first = 60000ms, .cap = 3600000ms, .max_age = std::chrono::hours(24)};
  // Moved back from the retry set, first deferred 23 h 30 min ago: a 60-minute wait would pass 24 h.
  auto old = entry("1-0");
  old.attempt = 20;
  old.deferred_ms = f.wall0 - (23 * 60 + 30) * 60 * 1000LL;
  f.p->admit(*c, old, nullptr, f.t0);
  auto idx = f.mark_all()[0];
  CHECK(f.p->at(idx).deferred_since_ms == old.deferred_ms);
  f.p->answered(f.answer(idx, adapters::outcome::transient, "451 4.7.1 greylisted"), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::final);
  CHECK(f.p->at(idx).outcome == final_state::failed);
  CHECK(f.p->at(idx).reason.find("max_retry_age") != std::string::npos);
  CHECK(f.p->at(idx).reason.find("451 4.7.1 greylisted") != std::string::npos);
  f.record_all();

  // Deferred 2 h ago: retried, and the first deferral is kept (it goes back to Redis with it).
  auto young = entry("2-0");
  young.attempt = 3;
  young.deferred_ms = f.wall0 - 2 * 3600 * 1000LL;
  f.p->admit(*c, young, nullptr, f.t0);
  idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::transient, "451 4.7.1 greylisted"), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::retry);
  CHECK(f.p->at(idx).retry_in_ms >= 3600000);  // 1 min x 4^3 = 64 min, capped at 60
  CHECK(f.p->at(idx).deferred_since_ms == young.deferred_ms);
  f.record_all();
  check_invariants(*f.p);
}

TEST_CASE("pipeline: a message handed back unsent (the path failed) is not an attempt and waits for the probe") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  auto last = entry("1-0");
  last.attempt = 2;  // one attempt left: an attempt charged now would fail it
  f.p->admit(*c, last, nullptr, f.t0);
  auto idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::unsent, "local: cannot connect", 8000ms), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::retry);
  CHECK(f.p->at(idx).attempts == 2);
  CHECK(f.p->at(idx).paused_retries == 1);
  CHECK(f.p->at(idx).retry_in_ms == 8000);  // the next probe
  CHECK(f.p->at(idx).reason == "local: cannot connect");
  f.record_all();
  CHECK(f.obs.counts.back() == std::pair<std::string, std::string>{"1-0", "retry"});

  // Without a probe time it still waits a second, never a tight loop.
  f.p->admit(*c, entry("2-0"), nullptr, f.t0);
  idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::unsent, "local: relay closed"), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::retry);
  CHECK(f.p->at(idx).attempts == 0);
  CHECK(f.p->at(idx).retry_in_ms == 1000);
  f.record_all();

  // Handed back as often as a pause may be: then it counts, and the attempts end it.
  auto worn = entry("3-0");
  worn.attempt = 2;
  worn.paused = max_paused_retries;
  f.p->admit(*c, worn, nullptr, f.t0);
  idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::unsent, "local: cannot connect", 8000ms), 0, f.t0, f.wall0);
  CHECK(f.p->at(idx).kind == record_kind::final);
  CHECK(f.p->at(idx).outcome == final_state::failed);
  f.record_all();
  check_invariants(*f.p);
}

TEST_CASE("pipeline: permanent and ambiguous answers are final with the reply") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  f.p->admit(*c, entry("1-0"), nullptr, f.t0);
  f.p->admit(*c, entry("2-0"), nullptr, f.t0);
  auto batch = f.mark_all();
  f.p->answered(f.answer(batch[0], adapters::outcome::permanent, "550 5.1.1 no such user"), 0, f.t0, f.wall0);
  f.p->answered(f.answer(batch[1], adapters::outcome::ambiguous, "local: connection lost after the final dot"), 0, f.t0, f.wall0);
  CHECK(f.p->at(batch[0]).outcome == final_state::failed);
  CHECK(f.p->at(batch[0]).reason == "550 5.1.1 no such user");
  CHECK(f.p->at(batch[1]).outcome == final_state::ambiguous);
  CHECK(f.p->at(batch[1]).reply == "local: connection lost after the final dot");
  f.record_all();
  CHECK(f.obs.counts.size() == 2);
}

TEST_CASE("pipeline: the send window bounds what is marked and unanswered; the urgent lane goes first") {
  fixture f;
  auto news = make_campaign(f.cfg, "news");
  auto urgent = make_campaign(f.cfg, "urgent", queue::channel::email, 9);
  for (auto id : {"1-0", "2-0", "3-0"}) f.p->admit(*news, entry(id), nullptr, f.t0);
  f.p->admit(*urgent, entry("1-1"), nullptr, f.t0);
  f.p->admit(*urgent, entry("2-1"), nullptr, f.t0);
  const auto batch = f.p->take_mark_batch();
  REQUIRE(batch.size() == 4);
  CHECK(f.p->at(batch[0]).owner == urgent.get());
  CHECK(f.p->at(batch[1]).owner == urgent.get());
  CHECK(f.p->at(batch[2]).owner == news.get());
  for (auto i : batch) f.p->marked(i, std::nullopt, false, f.t0);
  f.p->batch_done();
  CHECK(f.p->on_wire() == 4);
  CHECK_FALSE(f.p->wants_marks());  // the window is full
  f.p->answered(f.answer(batch[0], adapters::outcome::accepted), 0, f.t0, f.wall0);
  CHECK(f.p->wants_marks());
  CHECK(f.p->take_mark_batch().size() == 1);
}

TEST_CASE("pipeline: a batch marks each campaign's slots together") {
  fixture f;
  f.opt.send_window = 8;
  f.p = std::make_unique<pipeline>(f.opt, f.no_limits, f.obs);
  auto a = make_campaign(f.cfg, "a");
  auto b = make_campaign(f.cfg, "b");
  f.p->admit(*a, entry("1-0"), nullptr, f.t0);
  f.p->admit(*b, entry("2-0"), nullptr, f.t0);
  f.p->admit(*a, entry("3-0"), nullptr, f.t0);
  f.p->admit(*b, entry("4-0"), nullptr, f.t0);
  const auto batch = f.p->take_mark_batch();
  REQUIRE(batch.size() == 4);
  std::vector<std::string> order;
  for (auto i : batch) order.push_back(f.p->at(i).entry_id);
  CHECK(order == std::vector<std::string>{"1-0", "3-0", "2-0", "4-0"});
}

TEST_CASE("pipeline: a refused or abandoned recording frees the slots without counting") {
  fixture f;
  auto c = make_campaign(f.cfg, "c1");
  f.p->admit(*c, entry("1-0"), nullptr, f.t0);
  auto idx = f.mark_all()[0];
  f.p->answered(f.answer(idx, adapters::outcome::accepted), 0, f.t0, f.wall0);
  for (auto& b : f.p->take_records()) f.p->abandon(b);
  CHECK(f.obs.counts.empty());
  CHECK(f.p->free_slots() == f.p->capacity());
  CHECK(c->held == 0);
}

TEST_CASE("pipeline: at a stop, everything waiting for a token or a mark goes back; a resent message keeps its mark") {
  fixture f;
  budstikke::limits_config lc;
  lc.tenants["default"] = 5;
  limit_plan limits(lc, f.keys);
  pipeline p(f.opt, limits, f.obs);
  auto c = make_campaign(f.cfg, "c1");
  c->tenant_bucket = limits.tenant("default");
  auto t = make_campaign(f.cfg, "t");
  recovery_info on_wire{1, true, "host-0"};
  f.cfg.categories["tariff"].resend_ambiguous_email = true;
  t->policy = &f.cfg.policy("tariff");
  p.admit(*c, entry("1-0"), nullptr, f.t0);
  p.admit(*t, entry("2-0"), &on_wire, f.t0);  // no tenant bucket for it: out at once
  CHECK(p.limited() == 1);
  CHECK(p.on_wire() == 1);
  p.hand_back_waiting();
  CHECK(p.limited() == 0);
  CHECK(p.free_slots() == p.capacity() - 1);
  // The resent one, handed back later, is freed without a release: its mark stays in Redis.
  CHECK(f.obs.handed == 1);
  check_invariants(p);
}
