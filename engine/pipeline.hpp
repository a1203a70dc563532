// The slots of one shard and what happens to a message in them, as a state machine without I/O:
// the shard's loops do the round trips and tell the pipeline what came back; the pipeline says
// what state each slot is in and what is to be done next (sends to push, marks to write,
// tokens to ask for, records to write). Time and randomness come in as arguments.
//
// A slot's life (docs/architecture.md):
//
//   free ─admit─▶ (read, checked, rendered in one step) ─▶ limited ─tokens─▶ ready ─▶ marking ─▶ on_wire
//                                   │                        │                │          │          │
//                                   │ unusable, poison,      │ paused/quiet   │ paused,  │ skipped  │ answer
//                                   ▼ not resent             ▼ (handed back)  ▼ stopping ▼          ▼
//                                answered ◀──────────────────────────────────────────────── answered
//                                   │  (a final state, a retry due later, or a release of an in-flight mark)
//                                   ▼
//                               recording ─▶ free
//
// A slot handed back without an in-flight mark goes straight to free (its entry stays pending
// for this consumer and is read again); one with a mark is recorded as a release first, so the
// next run does not take it for ambiguous. An entry resent after a crash keeps its mark.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/delivery.hpp"
#include "engine/campaign.hpp"
#include "engine/limits.hpp"
#include "engine/metrics.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consumer.hpp"
#include "queue/rate_limit.hpp"
#include "templates/sms.hpp"

namespace budstikke::engine {

using steady_time = std::chrono::steady_clock::time_point;

enum class slot_state : std::uint8_t {
  free,       // in the free list
  limited,    // rendered; waits in its limit group for rate-limit tokens
  ready,      // rendered and allowed; waits for its in-flight mark and the consent check
  marking,    // its mark and consent lookup are on the way to Redis
  on_wire,    // pushed to an adapter; no answer yet
  answered,   // what to record is known (a final state, a retry, a release); waits for the recorder
  recording,  // its record is on the way to Redis
};
std::string_view to_string(slot_state s);

// What a slot's record says.
enum class record_kind : std::uint8_t {
  final,    // a final state (sent, failed, skipped, ambiguous)
  retry,    // a transient failure: into the retry set, due after retry_in_ms
  release,  // not sent: only its in-flight mark is cleared (the entry stays pending)
};

struct slot {
  adapters::delivery d;
  slot_state state = slot_state::free;
  campaign* owner = nullptr;
  std::string entry_id;
  std::string member;
  record_kind kind = record_kind::final;
  queue::final_state outcome = queue::final_state::sent;  // with record_kind::final
  std::int64_t retry_in_ms = 0;                            // with record_kind::retry
  std::string reason;
  std::string reply;                 // the relay's or gateway's last answer
  std::uint32_t attempts = 0;        // sends that counted
  std::uint32_t paused_retries = 0;  // transient answers that carried a Retry-After
  std::int64_t deferred_since_ms = 0;  // the first transient answer (ms since the epoch); 0: none yet
  bool marked = false;   // its in-flight mark is written: it may be on the wire
  bool resent = false;   // it was on the wire when an engine stopped, and is sent again
  steady_time pushed_at{};   // for the relay round-trip metric
  steady_time limited_at{};  // when it began to wait for rate-limit tokens
};

// Where an entry taken over from a consumer's pending list comes from.
struct recovery_info {
  std::int64_t deliveries = 0;  // times read before (XPENDING)
  bool was_on_wire = false;     // its in-flight mark survived
  std::string_view from;        // the consumer it came from
};

struct pipeline_options {
  std::size_t window = 2000;        // slots
  std::size_t send_window = 16;     // marked and unanswered at once
  std::size_t record_batch = 512;   // records per recording round trip
  std::size_t max_deliveries = 5;   // an entry read this often without an outcome is poison
  std::string sms_default_region = "NO";
  std::string sms_default_from;     // the gateway's sender id, for campaigns without one
};

// What the pipeline reports as it goes: metrics and counts, kept out of the state machine.
class pipeline_observer {
 public:
  virtual void admitted(const campaign& c, const slot& s, bool recovered) = 0;
  virtual void waited_for_tokens(metrics::limiter held_by, std::chrono::steady_clock::duration waited) = 0;
  virtual void answered(const campaign& c, const slot& s, std::chrono::steady_clock::duration roundtrip) = 0;
  // A record Redis counted: a final state, or a retry put in the retry set.
  virtual void counted(const campaign& c, const slot& s) = 0;
  virtual void handed_back(const slot& s) = 0;

 protected:
  ~pipeline_observer() = default;
};

class pipeline {
 public:
  // Messages that pass the same rate-limit buckets wait in one group, so that an exhausted bucket
  // (one domain, one tenant) holds back only its own messages.
  struct limit_group {
    std::vector<const queue::token_bucket*> buckets;
    std::vector<metrics::limiter> kinds;
    std::deque<std::uint32_t> waiting;
    steady_time next_try{};  // no token before this
    metrics::limiter held_by = metrics::limiter::global;  // the bucket that last held it back
  };
  struct token_ask {
    limit_group* group;
    std::int64_t wanted;
  };
  struct record_batch {
    campaign* owner;
    std::vector<std::uint32_t> slots;
  };

  pipeline(const pipeline_options& opt, const limit_plan& limits, pipeline_observer& observer);

  std::size_t capacity() const { return slots_.size(); }
  std::size_t free_slots() const { return free_.size(); }
  std::size_t held() const { return slots_.size() - free_.size(); }
  std::size_t on_wire() const { return on_wire_; }
  std::size_t ready() const { return ready_.size(); }
  std::size_t marking() const { return marking_; }
  std::size_t limited() const { return limited_; }
  std::size_t records_waiting() const { return records_waiting_; }
  std::size_t send_window() const { return opt_.send_window; }
  const slot& at(std::uint32_t idx) const { return *slots_[idx]; }
  // What an adapter is given for a slot on the wire (its buffers are the slot's).
  adapters::delivery& delivery(std::uint32_t idx) { return slots_[idx]->d; }
  // Slots in each state (for tests and invariants): they add up to capacity().
  std::array<std::size_t, 7> census() const;

  // A read entry takes a free slot: checked (poison, ambiguous after a crash, an unusable
  // campaign or entry), rendered, and on to limited, ready, on_wire (already marked) or answered.
  // Needs free_slots() > 0.
  void admit(campaign& c, const queue::stream_entry& e, const recovery_info* recovered, steady_time now);

  // ---- in-flight marks and the consent check (one round trip per batch) ----
  bool wants_marks() const { return !ready_.empty() && on_wire_ + marking_ < opt_.send_window; }
  // ready -> marking, as many as fit the send window, the urgent lane first.
  const std::vector<std::uint32_t>& take_mark_batch();
  // The round trip failed: marking -> ready again, at the front and in order; or, when
  // `stopping`, handed back.
  void marks_failed(bool stopping);
  // One slot of the batch: its mark is written and `problem` is the consent verdict. marking ->
  // answered (skipped), handed back (its campaign paused or quiet meanwhile, or `stopping`), or
  // on_wire (see sends()).
  void marked(std::uint32_t idx, const std::optional<std::string>& problem, bool stopping, steady_time now);
  // Every slot of the batch has been through marked() or marks_failed().
  void batch_done() { batch_.clear(); }

  // ---- rate limits ----
  // Tokens are asked for when half the send window is free (or all that waits fits): one script
  // call per half window, not one per answer that frees a slot.
  bool room_for_tokens() const;
  // The groups that may ask now, each for its share of the room in the send window.
  const std::vector<token_ask>& token_asks(steady_time now);
  // The answer for one group: granted messages move on (ready, or on_wire if marked); when
  // fewer were granted, the group waits until the bucket that holds it back has a token.
  void tokens_granted(limit_group& g, const queue::token_grant& grant, steady_time now);
  // The script refused (a Redis error): the group asks again in a second.
  void tokens_refused(limit_group& g, steady_time now);
  // How long until a waiting group may ask again (a day when none waits).
  std::chrono::steady_clock::duration until_tokens(steady_time now) const;

  // ---- the adapters ----
  // Slots that went on the wire since the last call, in order: push each one's delivery.
  std::vector<std::uint32_t>& sends() { return sends_; }
  // on_wire -> answered: the outcome, a retry (with its delay from `random`), or failed when
  // the attempts are used up.
  // `wall_ms`: now, in ms since the epoch (the age of a deferred message is kept in Redis).
  void answered(const adapters::delivery& d, std::uint64_t random, steady_time now, std::int64_t wall_ms);

  // ---- recording ----
  // answered -> recording, grouped by campaign (in the order their first record came).
  std::vector<record_batch>& take_records();
  // recording -> free: Redis recorded the batch; the records it counted are reported to the
  // observer first (a retry whose entry vanished counts as failed).
  void recorded(record_batch& b, const queue::record_result& result);
  // recording -> free without a record: the entries stay pending and are read again later
  // (Redis refused the batch, or the shutdown grace is over).
  void abandon(record_batch& b);

  // ---- control ----
  // What of the campaign is read but not on the wire goes back (paused, cancelled, quiet hours);
  // the campaign takes up its own backlog again once drained.
  void hold_back(campaign& c);
  // Everything waiting for tokens or marks goes back (stopping).
  void hand_back_waiting();

  // For tests: the slot an entry of `c` occupies, if any.
  std::optional<std::uint32_t> find(const campaign& c, std::string_view entry_id) const;

 private:
  void finish(std::uint32_t idx, record_kind kind, queue::final_state outcome, std::string_view reason);
  void to_send(std::uint32_t idx, steady_time now);
  void enqueue_ready(std::uint32_t idx);
  void send(std::uint32_t idx, steady_time now);
  void hand_back(std::uint32_t idx);
  void release(std::uint32_t idx);
  limit_group* group_for(const slot& s);
  std::optional<render_failure> prepare_sms(campaign& c, const queue::stream_entry& e, adapters::delivery& d);

  pipeline_options opt_;
  const limit_plan& limits_;
  pipeline_observer& observer_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::vector<std::uint32_t> free_;
  std::deque<std::uint32_t> ready_;          // rendered, waiting for their in-flight mark
  std::vector<std::uint32_t> batch_;         // being marked
  std::vector<const campaign*> owners_;      // scratch for grouping a batch
  std::vector<std::uint32_t> regrouped_;
  std::vector<std::uint32_t> sends_;         // went on the wire, not yet pushed
  std::map<std::array<int, 4>, limit_group> groups_;  // by bucket indices (global, channel, tenant, domain)
  std::vector<token_ask> asks_;
  std::vector<record_batch> records_;
  std::vector<campaign*> with_records_;      // campaigns whose to_record is not empty
  std::size_t on_wire_ = 0;
  std::size_t marking_ = 0;
  std::size_t limited_ = 0;
  std::size_t records_waiting_ = 0;
  templates::sms::message sms_text_;  // reused for every SMS
};

}  // namespace budstikke::engine
