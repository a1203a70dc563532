#include "engine/pipeline.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "adapters/sms_http/phone.hpp"
#include "engine/retry.hpp"

namespace budstikke::engine {

using queue::final_state;

std::string_view to_string(slot_state s) {
  switch (s) {
    case slot_state::free: return "free";
    case slot_state::limited: return "limited";
    case slot_state::ready: return "ready";
    case slot_state::marking: return "marking";
    case slot_state::on_wire: return "on_wire";
    case slot_state::answered: return "answered";
    case slot_state::recording: return "recording";
  }
  return "?";
}

pipeline::pipeline(const pipeline_options& opt, const limit_plan& limits, pipeline_observer& observer)
    : opt_(opt), limits_(limits), observer_(observer) {
  opt_.window = std::max<std::size_t>(1, opt_.window);
  opt_.send_window = std::max<std::size_t>(1, opt_.send_window);
  slots_.reserve(opt_.window);
  free_.reserve(opt_.window);
  for (std::size_t i = 0; i < opt_.window; ++i) {
    slots_.push_back(std::make_unique<slot>());
    slots_.back()->d.slot = static_cast<std::uint32_t>(i);
    free_.push_back(static_cast<std::uint32_t>(opt_.window - 1 - i));
  }
}

std::array<std::size_t, 7> pipeline::census() const {
  std::array<std::size_t, 7> n{};
  for (const auto& s : slots_) ++n[static_cast<std::size_t>(s->state)];
  return n;
}

void pipeline::admit(campaign& c, const queue::stream_entry& e, const recovery_info* recovered, steady_time now) {
  const std::uint32_t idx = free_.back();
  free_.pop_back();
  slot& s = *slots_[idx];
  s.owner = &c;
  ++c.held;
  s.entry_id.assign(e.id);
  s.member.assign(e.member);
  s.attempts = e.attempt;
  s.paused_retries = e.paused;
  s.deferred_since_ms = e.deferred_ms;
  s.marked = false;
  s.resent = false;
  s.reason.clear();
  s.reply.clear();
  s.state = slot_state::answered;  // until it is placed below
  observer_.admitted(c, s, recovered != nullptr);
  if (recovered) {
    if (recovered->deliveries >= static_cast<std::int64_t>(opt_.max_deliveries)) {
      finish(idx, record_kind::final, final_state::failed,
             fmt::format("poison: read {} times without an outcome", recovered->deliveries));
      return;
    }
    if (recovered->was_on_wire) {
      const bool resend = c.def.kind == queue::channel::email ? c.policy->resend_ambiguous_email
                                                              : c.policy->resend_ambiguous_sms;
      if (!resend) {
        finish(idx, record_kind::final, final_state::ambiguous,
               fmt::format("on the wire when consumer {} stopped; not resent (category {})", recovered->from,
                           c.def.category));
        return;
      }
      s.resent = true;
      // Its mark stays: if this engine dies too, the message is still one that may have gone out.
      s.marked = true;
    }
  }
  if (c.mode == serve_mode::fail_all) {
    finish(idx, record_kind::final, final_state::failed, c.unusable_reason);
    return;
  }
  if (!e.malformed.empty()) {
    finish(idx, record_kind::final, final_state::failed, e.malformed);
    return;
  }
  if (!e.well_formed) {
    finish(idx, record_kind::final, final_state::failed, "malformed stream entry: field 'to' missing or empty");
    return;
  }
  if (auto problem = queue::recipient_size_problem(e.to, e.member, e.data)) {
    // An oversized member id is not carried into the outcome, the dead letter and the event.
    if (e.member.size() > queue::max_member_id_bytes) s.member.clear();
    finish(idx, record_kind::final, final_state::failed, *problem);
    return;
  }
  auto problem = c.def.kind == queue::channel::sms ? prepare_sms(c, e, s.d)
                                                   : c.renderer->prepare_email(e.id, e.to, e.member, e.data, s.d);
  if (problem) {
    finish(idx, record_kind::final, problem->state, problem->reason);
    return;
  }
  to_send(idx, now);
}

// The number checked and in E.164 (consent, suppression and the gateway all see that form), then
// the text with its encoding and segments.
std::optional<render_failure> pipeline::prepare_sms(campaign& c, const queue::stream_entry& e, adapters::delivery& d) {
  if (auto problem = adapters::sms_http::normalise_phone(e.to, opt_.sms_default_region, d.envelope_to))
    return render_failure{final_state::skipped, std::string(*problem)};
  return c.renderer->prepare_sms(d.envelope_to, e.member, e.data,
                                 c.def.from_address.empty() ? opt_.sms_default_from : c.def.from_address, sms_text_, d);
}

// Rendered (or due for a retry): on to the rate limits, the in-flight mark, the adapter. A
// message already marked (resent after a crash) needs no new mark.
void pipeline::to_send(std::uint32_t idx, steady_time now) {
  slot& s = *slots_[idx];
  if (limits_.enabled()) {
    if (limit_group* g = group_for(s)) {
      s.state = slot_state::limited;
      s.limited_at = now;
      g->waiting.push_back(idx);
      ++limited_;
      return;
    }
  }
  if (s.marked) send(idx, now);
  else enqueue_ready(idx);
}

// In line for its in-flight mark: an urgent message ahead of everything but earlier urgent ones.
void pipeline::enqueue_ready(std::uint32_t idx) {
  slots_[idx]->state = slot_state::ready;
  if (slots_[idx]->owner->urgent) {
    auto pos = std::find_if(ready_.begin(), ready_.end(), [&](std::uint32_t i) { return !slots_[i]->owner->urgent; });
    ready_.insert(pos, idx);
  } else {
    ready_.push_back(idx);
  }
}

const std::vector<std::uint32_t>& pipeline::take_mark_batch() {
  batch_.clear();
  while (!ready_.empty() && on_wire_ + batch_.size() < opt_.send_window) {
    batch_.push_back(ready_.front());
    ready_.pop_front();
  }
  // One HSET of marks per campaign: a campaign's slots side by side, campaigns in the order they
  // first appear (the urgent lane first, as the ready queue has them).
  owners_.clear();
  for (auto idx : batch_)
    if (std::find(owners_.begin(), owners_.end(), slots_[idx]->owner) == owners_.end()) owners_.push_back(slots_[idx]->owner);
  if (owners_.size() > 1) {
    regrouped_.clear();
    for (const campaign* o : owners_)
      for (auto idx : batch_)
        if (slots_[idx]->owner == o) regrouped_.push_back(idx);
    batch_.swap(regrouped_);
  }
  for (auto idx : batch_) slots_[idx]->state = slot_state::marking;
  marking_ = batch_.size();
  return batch_;
}

void pipeline::marks_failed(bool stopping) {
  marking_ = 0;
  if (stopping) {
    for (auto idx : batch_) hand_back(idx);
    return;
  }
  for (auto it = batch_.rbegin(); it != batch_.rend(); ++it) {
    slots_[*it]->state = slot_state::ready;
    ready_.push_front(*it);
  }
}

void pipeline::marked(std::uint32_t idx, const std::optional<std::string>& problem, bool stopping, steady_time now) {
  slot& s = *slots_[idx];
  s.marked = true;
  --marking_;
  if (stopping) hand_back(idx);  // nothing of this batch goes out
  else if (problem) finish(idx, record_kind::final, final_state::skipped, *problem);
  else if (!s.owner->active || s.owner->quiet) hand_back(idx);  // paused or quiet while it was being marked
  else send(idx, now);
}

bool pipeline::room_for_tokens() const {
  const std::size_t busy = on_wire_ + ready_.size() + marking_;
  const std::size_t sw = opt_.send_window;
  return busy < sw && sw - busy >= std::min(limited_, std::max<std::size_t>(1, sw / 2));
}

const std::vector<pipeline::token_ask>& pipeline::token_asks(steady_time now) {
  asks_.clear();
  if (!room_for_tokens()) return asks_;
  const std::size_t busy = on_wire_ + ready_.size() + marking_;
  for (auto& [key, g] : groups_)
    if (!g.waiting.empty() && g.next_try <= now) asks_.push_back({&g, 0});
  if (asks_.empty()) return asks_;
  const std::size_t share = std::max<std::size_t>(1, (opt_.send_window - busy) / asks_.size());
  for (auto& a : asks_) a.wanted = static_cast<std::int64_t>(std::min(share, a.group->waiting.size()));
  return asks_;
}

void pipeline::tokens_granted(limit_group& g, const queue::token_grant& grant, steady_time now) {
  if (grant.limiting >= 0 && static_cast<std::size_t>(grant.limiting) < g.kinds.size()) {
    g.held_by = g.kinds[static_cast<std::size_t>(grant.limiting)];
    g.next_try = now + grant.wait;
  }
  // Messages handed back meanwhile (a pause) have left the queue; only what is left moves.
  for (std::int64_t k = 0; k < grant.granted && !g.waiting.empty(); ++k) {
    const std::uint32_t idx = g.waiting.front();
    g.waiting.pop_front();
    --limited_;
    slot& s = *slots_[idx];
    observer_.waited_for_tokens(g.held_by, now - s.limited_at);
    if (s.marked) send(idx, now);
    else enqueue_ready(idx);
  }
}

void pipeline::tokens_refused(limit_group& g, steady_time now) { g.next_try = now + std::chrono::seconds(1); }

std::chrono::steady_clock::duration pipeline::until_tokens(steady_time now) const {
  if (limited_ == 0) return std::chrono::hours(24);
  if (!room_for_tokens()) return std::chrono::milliseconds(200);  // an answer that frees room wakes the loop sooner
  auto next = steady_time::max();
  for (const auto& [key, g] : groups_)
    if (!g.waiting.empty()) next = std::min(next, g.next_try);
  return std::max<std::chrono::steady_clock::duration>(std::chrono::milliseconds(0), next - now);
}

// The group of the buckets a message must pass; nullptr when none applies to it.
pipeline::limit_group* pipeline::group_for(const slot& s) {
  const campaign& c = *s.owner;
  const auto key = limits_.buckets_for(c.def.kind, c.tenant_bucket, s.d.envelope_to);
  if (key[0] < 0 && key[1] < 0 && key[2] < 0 && key[3] < 0) return nullptr;
  auto [it, fresh] = groups_.try_emplace(key);
  if (fresh) {
    for (int b : key) {
      if (b < 0) continue;
      it->second.buckets.push_back(&limits_.at(b).spec);
      it->second.kinds.push_back(limits_.at(b).kind);
    }
    it->second.held_by = it->second.kinds.front();
  }
  return &it->second;
}

void pipeline::send(std::uint32_t idx, steady_time now) {
  slot& s = *slots_[idx];
  ++s.attempts;
  ++on_wire_;
  s.pushed_at = now;
  s.state = slot_state::on_wire;
  sends_.push_back(idx);
}

void pipeline::answered(const adapters::delivery& d, std::uint64_t random, steady_time now, std::int64_t wall_ms) {
  const std::uint32_t idx = d.slot;
  slot& s = *slots_[idx];
  --on_wire_;
  observer_.answered(*s.owner, s, now - s.pushed_at);
  s.reply.assign(d.reply);
  switch (d.result) {
    case adapters::outcome::accepted:
      finish(idx, record_kind::final, final_state::sent, {});
      return;
    case adapters::outcome::permanent:
      finish(idx, record_kind::final, final_state::failed, d.reply);
      return;
    case adapters::outcome::ambiguous:
      finish(idx, record_kind::final, final_state::ambiguous, d.reply);
      return;
    case adapters::outcome::transient:
    case adapters::outcome::unsent:
      break;
  }
  // The retry waits in Redis (the campaign's retry set), not in this slot: the slot is free once
  // the retry is recorded, and a restart does not lose it. An unsent message (the path failed)
  // is not an attempt: like an answer that only asked for a pause, it waits until the path's
  // next probe, at least min_unsent_wait.
  const auto pause = d.result == adapters::outcome::unsent ? std::max(d.retry_after, min_unsent_wait) : d.retry_after;
  const auto deferred_for = std::chrono::milliseconds(s.deferred_since_ms > 0 ? std::max<std::int64_t>(0, wall_ms - s.deferred_since_ms) : 0);
  auto plan = plan_retry(s.attempts, s.paused_retries, pause, deferred_for, s.owner->retry, random);
  s.attempts = plan.attempts;
  s.paused_retries = plan.paused;
  switch (plan.what) {
    case retry_plan::verdict::retry:
      break;
    case retry_plan::verdict::attempts_used_up:
      finish(idx, record_kind::final, final_state::failed, fmt::format("gave up after {} attempts: {}", s.attempts, d.reply));
      return;
    case retry_plan::verdict::too_old:
      finish(idx, record_kind::final, final_state::failed,
             fmt::format("gave up: deferred for {} s, the next attempt would pass max_retry_age ({} s): {}",
                         deferred_for.count() / 1000, s.owner->retry.max_age.count() / 1000, d.reply));
      return;
  }
  // The age is counted from the first answer that deferred the message, not from a pause or a
  // hand-back.
  if (s.deferred_since_ms == 0 && d.result == adapters::outcome::transient && d.retry_after.count() == 0)
    s.deferred_since_ms = wall_ms;
  finish(idx, record_kind::retry, final_state::failed, d.reply);
  s.retry_in_ms = plan.delay.count();
}

void pipeline::finish(std::uint32_t idx, record_kind kind, final_state outcome, std::string_view reason) {
  slot& s = *slots_[idx];
  s.state = slot_state::answered;
  s.kind = kind;
  s.outcome = outcome;
  s.retry_in_ms = 0;
  s.reason.assign(reason);
  campaign& c = *s.owner;
  if (c.to_record.empty()) with_records_.push_back(&c);
  c.to_record.push_back(idx);
  ++records_waiting_;
}

std::vector<pipeline::record_batch>& pipeline::take_records() {
  records_.clear();
  for (campaign* c : with_records_) {
    for (auto idx : c->to_record) slots_[idx]->state = slot_state::recording;
    records_.push_back({c, std::move(c->to_record)});
    c->to_record.clear();
  }
  with_records_.clear();
  records_waiting_ = 0;
  return records_;
}

void pipeline::recorded(record_batch& b, const queue::record_result& result) {
  for (std::size_t k = 0; k < b.slots.size(); ++k) {
    slot& s = *slots_[b.slots[k]];
    const auto how = k < result.counted.size() ? result.counted[k] : queue::record_count::not_counted;
    if (how == queue::record_count::retry_failed) {  // a retry whose entry vanished: recorded failed
      s.kind = record_kind::final;
      s.outcome = final_state::failed;
      s.retry_in_ms = 0;
    }
    if (how != queue::record_count::not_counted) observer_.counted(*b.owner, s);
    release(b.slots[k]);
  }
}

void pipeline::abandon(record_batch& b) {
  for (auto idx : b.slots) release(idx);
}

// Not sent, and not to be sent by this run: the entry stays pending for this consumer. A mark is
// cleared first (through the recorder), so the next run does not take it for ambiguous.
void pipeline::hand_back(std::uint32_t idx) {
  slot& s = *slots_[idx];
  observer_.handed_back(s);
  if (s.marked && !s.resent) finish(idx, record_kind::release, final_state::sent, {});
  else release(idx);
}

void pipeline::release(std::uint32_t idx) {
  slot& s = *slots_[idx];
  --s.owner->held;
  s.owner = nullptr;
  s.state = slot_state::free;
  free_.push_back(idx);
}

void pipeline::hold_back(campaign& c) {
  std::deque<std::uint32_t> keep;
  for (auto idx : ready_) {
    if (slots_[idx]->owner == &c) hand_back(idx);
    else keep.push_back(idx);
  }
  ready_.swap(keep);
  for (auto& [key, g] : groups_) {
    std::deque<std::uint32_t> stay;
    for (auto idx : g.waiting) {
      if (slots_[idx]->owner != &c) {
        stay.push_back(idx);
        continue;
      }
      --limited_;
      hand_back(idx);
    }
    g.waiting.swap(stay);
  }
  // What went back stays pending for this consumer: take up the own backlog once drained.
  c.recover_after_drain = true;
}

void pipeline::hand_back_waiting() {
  for (auto idx : ready_) hand_back(idx);
  ready_.clear();
  for (auto& [key, g] : groups_) {
    for (auto idx : g.waiting) {
      --limited_;
      hand_back(idx);
    }
    g.waiting.clear();
  }
}

std::optional<std::uint32_t> pipeline::find(const campaign& c, std::string_view entry_id) const {
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i]->owner == &c && slots_[i]->entry_id == entry_id) return i;
  return std::nullopt;
}

}  // namespace budstikke::engine
