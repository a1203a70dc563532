#include "engine/scheduler.hpp"

#include <algorithm>

#include "support/smooth_weighted.hpp"

namespace budstikke::engine {

scheduler::scheduler(scheduler_options opt) : opt_(std::move(opt)) {
  want_ = std::max<std::size_t>(1, std::min(opt_.read_batch, opt_.window));
  urgent_reserve_ = std::min(opt_.read_batch, opt_.window / 4);
}

campaign* scheduler::find(std::string_view id) {
  auto it = campaigns_.find(id);
  return it == campaigns_.end() ? nullptr : it->second.get();
}

std::shared_ptr<campaign> scheduler::shared(std::string_view id) {
  auto it = campaigns_.find(id);
  return it == campaigns_.end() ? nullptr : it->second;
}

campaign* scheduler::by_stream(std::string_view stream_key) {
  for (auto& [id, c] : campaigns_)
    if (c->stream_key == stream_key) return c.get();
  return nullptr;
}

campaign& scheduler::add(std::shared_ptr<campaign> c) {
  c->weight = c->def.priority + 1;
  c->urgent = c->def.priority >= urgent_priority;
  if (auto it = opt_.tenant_weights.find(c->def.tenant); it != opt_.tenant_weights.end())
    tenants_[c->def.tenant].weight = it->second;
  auto id = c->def.id;
  auto [it, fresh] = campaigns_.insert_or_assign(std::move(id), std::move(c));
  return *it->second;
}

void scheduler::forget_gone() {
  for (auto it = campaigns_.begin(); it != campaigns_.end();) {
    const campaign& c = *it->second;
    if (!c.in_registry && c.held == 0 && c.to_record.empty()) it = campaigns_.erase(it);
    else ++it;
  }
}

read_plan scheduler::next(std::size_t free_slots) {
  read_plan plan;
  // The urgent lane may use every free slot; the others leave urgent_reserve_ of them free.
  const std::size_t free_for_all = free_slots > urgent_reserve_ ? free_slots - urgent_reserve_ : 0;
  const bool urgent_readable = std::any_of(campaigns_.begin(), campaigns_.end(), [](const auto& kv) {
    return kv.second->urgent && kv.second->readable();
  });
  if (free_for_all < want_ && !(urgent_readable && free_slots > 0)) {
    plan.what = read_plan::kind::wait_for_slots;
    return plan;
  }
  if (free_slots >= want_) {
    if (auto c = pick_recovery()) {
      plan.what = read_plan::kind::recover;
      plan.target = c;
      plan.consumer = c->recover.front();
      plan.min_idle = plan.consumer == opt_.consumer ? std::chrono::milliseconds(0) : opt_.claim_min_idle;
      plan.cursor = c->recover_cursor;
      plan.count = std::min(want_, free_slots);
      return plan;
    }
  }
  if (auto c = pick(free_for_all >= want_)) {
    plan.what = read_plan::kind::read;
    plan.target = c;
    plan.count = c->urgent ? std::min(want_, free_slots) : want_;
    return plan;
  }
  // Nothing to read without waiting: block on every campaign's stream for new entries.
  for (auto& [id, c] : campaigns_)
    if (c->takes_reads() && !c->recovering()) plan.streams.push_back(c);
  if (plan.streams.empty() || free_for_all < plan.streams.size()) {
    plan.streams.clear();
    plan.what = read_plan::kind::idle;
    return plan;
  }
  plan.what = read_plan::kind::block;
  plan.count = std::max<std::size_t>(1, std::min(want_, free_for_all / plan.streams.size()));
  return plan;
}

std::shared_ptr<campaign> scheduler::pick_recovery() {
  for (auto& [id, cp] : campaigns_) {
    campaign& c = *cp;
    if (!c.takes_reads()) continue;
    if (c.recover_after_drain && c.held == 0) {
      c.recover_after_drain = false;
      c.own_recovered = false;
    }
    if (!c.own_recovered && (c.recover.empty() || c.recover.front() != opt_.consumer)) {
      c.recover.push_front(opt_.consumer);
      c.recover_cursor = "-";
    }
    if (!c.recover.empty() && !(c.recover.front() == opt_.consumer && c.recover_after_drain)) return cp;
  }
  return nullptr;
}

// The campaign to read next, of those that can be read without blocking. Without
// `others_may_read` only urgent campaigns are chosen.
std::shared_ptr<campaign> scheduler::pick(bool others_may_read) {
  auto weight = [](const auto& kv) { return kv.second->weight; };
  auto current = [](const auto& kv) -> int& { return kv.second->current; };
  auto urgent = support::pick_smooth_weighted(campaigns_, weight, current,
                                              [](const auto& kv) { return kv.second->urgent && kv.second->readable(); });
  if (urgent != campaigns_.end()) return urgent->second;
  if (!others_may_read) return nullptr;

  // Tenants in the order their first readable campaign comes (ties go to the first).
  tenant_scratch_.clear();
  for (auto& [id, c] : campaigns_) {
    if (!c->readable()) continue;
    tenant* t = &tenants_[c->def.tenant];
    if (std::find(tenant_scratch_.begin(), tenant_scratch_.end(), t) == tenant_scratch_.end())
      tenant_scratch_.push_back(t);
  }
  auto chosen = support::pick_smooth_weighted(tenant_scratch_, [](tenant* t) { return t->weight; },
                                              [](tenant* t) -> int& { return t->current; });
  if (chosen == tenant_scratch_.end()) return nullptr;
  auto it = support::pick_smooth_weighted(campaigns_, weight, current, [&](const auto& kv) {
    return kv.second->readable() && &tenants_[kv.second->def.tenant] == *chosen;
  });
  return it == campaigns_.end() ? nullptr : it->second;
}

void scheduler::read_failed(const std::vector<std::shared_ptr<campaign>>& affected) {
  for (const auto& c : affected) c->recover_after_drain = true;
}

void scheduler::recovered_all(campaign& c) {
  if (c.recover.empty()) return;
  if (c.recover.front() == opt_.consumer) c.own_recovered = true;
  c.recover.pop_front();
  c.recover_cursor = "-";
}

bool scheduler::dead_consumer(campaign& c, const std::string& name) {
  if (name == opt_.consumer || std::find(c.recover.begin(), c.recover.end(), name) != c.recover.end()) return false;
  c.recover.push_back(name);
  return true;
}

scheduler::state_change scheduler::apply_state(campaign& c, std::string_view state) {
  const bool was_active = c.active;
  c.active = state == "active";
  if (c.active && !was_active) {
    c.exhausted = false;
    return state_change::resumed;
  }
  if (was_active && !c.active) return state_change::paused;
  return state_change::none;
}

scheduler::quiet_change scheduler::evaluate_quiet(campaign& c, const std::vector<quiet_rule>& rules, sys_ms now) {
  if (rules.empty() || c.mode != serve_mode::send || now < c.quiet_change) return quiet_change::none;
  auto q = quiet_hours_at(rules, c.def.kind, c.def.category, now);
  c.quiet_change = q.until;
  if (q.quiet == c.quiet) return quiet_change::none;
  c.quiet = q.quiet;
  if (q.quiet) return quiet_change::entered;
  c.exhausted = false;
  return quiet_change::left;
}

}  // namespace budstikke::engine
