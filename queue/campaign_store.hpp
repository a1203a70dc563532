// Campaign operations over the schema: creating and filling a campaign (enqueue), reading its
// status, the registry, and the entries of an XREADGROUP reply. Commands are built into
// pipelines here; the callers decide when to send them.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "queue/consumer.hpp"
#include "queue/redis.hpp"
#include "queue/schema.hpp"
#include "support/result.hpp"

namespace budstikke::queue {

// Writes a new campaign: create, add recipients in pipelined batches, seal.
class campaign_writer {
 public:
  campaign_writer(connection& conn, keys k, campaign_definition def, std::size_t batch = 1000);

  // Claims the id (refused with std::errc::file_exists if a campaign with that id exists), writes
  // the definition and creates the stream with its consumer group.
  boost::asio::awaitable<support::result<void>> async_create();
  // Buffers one recipient; the caller flushes when `should_flush()`.
  void add(std::string_view to, std::string_view member, std::string_view data_json);
  bool should_flush() const { return pending_.commands() >= batch_; }
  boost::asio::awaitable<support::result<void>> async_flush();
  // Flushes, sets `total` and, with `serve`, registers the campaign with the engine (`send`
  // records its one-recipient campaign without: it sends the message itself).
  boost::asio::awaitable<support::result<void>> async_seal(bool serve = true);
  std::int64_t added() const { return added_; }

 private:
  // Runs `req`; a failure of the connection or any error reply, named with `what`.
  boost::asio::awaitable<support::result<void>> exec_checked(const request& req, std::string_view what);

  connection& conn_;
  keys keys_;
  campaign_definition def_;
  std::size_t batch_;
  std::string stream_key_;
  request pending_;
  std::vector<reply_ptr> replies_;
  std::int64_t added_ = 0;
};

struct campaign_status {
  std::string id;
  std::string state;
  std::string channel;
  std::string category;
  std::string tenant;
  int priority = 0;
  std::optional<std::int64_t> total;  // absent until the campaign is sealed
  std::int64_t enqueued = 0;          // recipients in the stream (entries added back for retries not counted)
  std::array<std::int64_t, 4> counts{};  // by final_state
  std::int64_t resent = 0;  // sent again after an engine stopped while they were on the wire
  std::int64_t retrying = 0;      // in the retry set, waiting for their retry (part of pending)
  std::int64_t dead_letters = 0;  // entries in the dead-letter stream (failed, not requeued)
  std::string created_at;
  std::string finished_at;

  std::int64_t count(final_state s) const { return counts[static_cast<std::size_t>(s)]; }
  std::int64_t done() const { return counts[0] + counts[1] + counts[2] + counts[3]; }
  std::int64_t remaining() const { return (total ? *total : enqueued) - done(); }
  // A cancelled campaign's untouched recipients are `cancelled`, not pending.
  std::int64_t cancelled() const { return state == "cancelled" ? remaining() : 0; }
  std::int64_t pending() const { return state == "cancelled" ? 0 : remaining(); }
  // Part of pending; a cancelled campaign's waiting retries are counted cancelled instead.
  std::int64_t waiting_retry() const { return state == "cancelled" ? 0 : retrying; }
};

// The failure code of a campaign that does not exist.
inline const std::error_code campaign_missing = std::make_error_code(std::errc::no_such_file_or_directory);

// Reads one campaign's status; fails with campaign_missing when it does not exist.
boost::asio::awaitable<support::result<campaign_status>> async_read_status(connection& conn, const keys& k,
                                                                           std::string_view id);
// Ids of every campaign (newest last), or of the registry of active ones; just `only` when given
// (without asking Redis).
boost::asio::awaitable<std::error_code> async_list_campaigns(connection& conn, const keys& k, bool active_only,
                                                             std::vector<std::string>& ids,
                                                             const std::optional<std::string>& only = std::nullopt);

// Builds the call that records a batch of outcomes of one campaign (see record_outcomes_script).
struct outcome_record {
  std::string_view entry_id;
  std::optional<final_state> state;  // nullopt: release the in-flight mark only (handed back), or retry
  std::string_view member;
  std::string_view reason;
  bool resent = false;               // resent after an engine stopped while it was on the wire
  std::uint32_t attempts = 0;        // sends that counted, this one included
  std::string_view reply;            // the relay's or gateway's last answer
  std::optional<std::int64_t> retry_in_ms;  // set: a transient failure, retried after this delay
  std::uint32_t paused = 0;          // with retry_in_ms: answers so far that only asked for a pause
  std::int64_t deferred_ms = 0;      // with retry_in_ms: the first transient answer (ms since the epoch), 0: none
};
void append_record_outcomes(request& req, const keys& k, std::string_view campaign_id,
                            std::string_view now_rfc3339, const std::vector<outcome_record>& records);

// Builds the call that moves up to `limit` due retries of one campaign back into its stream.
void append_move_due_retries(request& req, const keys& k, std::string_view campaign_id, std::size_t limit);

// Builds the call that requeues these dead letters of one campaign (see requeue_dead_script).
void append_requeue_dead(request& req, const keys& k, std::string_view campaign_id,
                         std::span<const std::string> dead_letter_ids);

// Builds the call that moves a campaign to `target` if it is in one of the states `from` (see
// transition_script).
void append_transition(request& req, const keys& k, std::string_view campaign_id, std::string_view target,
                       std::string_view now, std::span<const std::string_view> from);

// Starts the call that appends `events` events to the events stream (see append_events_script);
// follow with one append_event per event.
void begin_append_events(request& req, const keys& k, std::size_t max_len, std::string_view at, std::size_t events);
// One event's event_args arguments, after begin_append_events.
void append_event(request& req, std::string_view campaign, std::string_view entry, std::string_view member,
                  channel ch, std::string_view state, std::string_view reason, std::string_view reply,
                  std::uint32_t attempt);


}  // namespace budstikke::queue
