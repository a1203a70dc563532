// Which campaign a shard reads next, and the campaigns it serves: a decision without I/O. The
// shard asks next() with the free slots it has and carries out the plan (a read, a take-over of
// pending entries, a blocking read of every stream), then tells the scheduler what came back.
//
// Fairness: the urgent lane (priority 9) first; otherwise a tenant by smooth weighted round-robin
// (engine.tenant_weights), then one of its campaigns the same way by priority. A campaign's own
// backlog (entries an earlier run of this consumer read but never recorded) is taken up before
// its new entries; those of consumers found dead after it.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/campaign.hpp"
#include "queue/consumer.hpp"

namespace budstikke::engine {

struct scheduler_options {
  std::size_t window = 2000;     // slots of the shard
  std::size_t read_batch = 256;  // entries per read
  std::string consumer;          // this shard's consumer name
  // A dead consumer's entries are claimed only when idle this long (half the consumer timeout):
  // two shards claiming them at once, XCLAIM's min-idle lets one win.
  std::chrono::milliseconds claim_min_idle{15000};
  std::map<std::string, int, std::less<>> tenant_weights;
};

struct read_plan {
  enum class kind {
    wait_for_slots,  // too few free slots: wait for some to free up
    recover,         // take over up to `count` pending entries of `consumer` in `target`
    read,            // read up to `count` new entries of `target`
    block,           // block on every stream in `streams` for up to `count` new entries each
    idle,            // nothing to read without waiting, and nothing to block on
  };
  kind what = kind::idle;
  // Shared: a campaign may leave the scheduler while its read is on the way; the plan keeps it
  // alive, and the shard admits entries only into campaigns the scheduler still has.
  std::shared_ptr<campaign> target;
  std::size_t count = 0;
  // recover:
  std::string consumer;
  std::chrono::milliseconds min_idle{0};
  std::string cursor;
  // block:
  std::vector<std::shared_ptr<campaign>> streams;
};

class scheduler {
 public:
  // Shared, so that a coroutine can keep a campaign across a round trip while another one
  // forgets it (the shard forgets campaigns only between two reads).
  using campaign_map = std::map<std::string, std::shared_ptr<campaign>, std::less<>>;

  explicit scheduler(scheduler_options opt);

  // Slots only the urgent lane may fill, so an urgent message never waits for a slow campaign's.
  std::size_t urgent_reserve() const { return urgent_reserve_; }
  std::size_t want() const { return want_; }

  // ---- the campaigns ----
  campaign_map& campaigns() { return campaigns_; }
  const campaign_map& campaigns() const { return campaigns_; }
  campaign* find(std::string_view id);
  std::shared_ptr<campaign> shared(std::string_view id);
  campaign* by_stream(std::string_view stream_key);
  campaign& add(std::shared_ptr<campaign> c);
  // Campaigns that left the registry and of which nothing is held or waits to be recorded.
  void forget_gone();

  // ---- what to read ----
  read_plan next(std::size_t free_slots);

  // What the plan's round trip found.
  void read(campaign& c, std::size_t entries) { c.exhausted = entries == 0; }
  void entries_arrived(campaign& c) { c.exhausted = false; }
  // The reply may have been lost after Redis delivered entries to this consumer: those sit in
  // its pending list, so each affected campaign re-takes its own backlog once its slots drain.
  void read_failed(const std::vector<std::shared_ptr<campaign>>& affected);
  // Redis refused to read the campaign's stream (deleted by hand, a key of the wrong type): it
  // is not served any more by this shard.
  void read_refused(campaign& c) { c.mode = serve_mode::not_served; }
  // Take-over: the page of pending entries was empty (that consumer's backlog is done), or
  // reached `last_id`.
  void recovered_all(campaign& c);
  void recovered_up_to(campaign& c, std::string_view last_id) { c.recover_cursor = "(" + std::string(last_id); }
  // A consumer with pending entries whose liveness key expired: its entries are taken over.
  // False when it was queued already.
  bool dead_consumer(campaign& c, const std::string& name);

  // ---- the registry's word on a known campaign ----
  enum class state_change { none, resumed, paused };
  // Applies the campaign's state (active, paused, cancelled, done) as the registry has it now.
  state_change apply_state(campaign& c, std::string_view state);

  // ---- quiet hours ----
  enum class quiet_change { none, entered, left };
  // Re-evaluates the campaign's quiet hours when they may have changed.
  quiet_change evaluate_quiet(campaign& c, const std::vector<quiet_rule>& rules, sys_ms now);

 private:
  std::shared_ptr<campaign> pick_recovery();
  std::shared_ptr<campaign> pick(bool others_may_read);

  scheduler_options opt_;
  std::size_t want_ = 0;
  std::size_t urgent_reserve_ = 0;
  campaign_map campaigns_;
  struct tenant {
    int weight = 1;
    int current = 0;
  };
  std::map<std::string, tenant, std::less<>> tenants_;  // a few per engine; never forgotten
  std::vector<tenant*> tenant_scratch_;
};

}  // namespace budstikke::engine
