#include "queue/campaign_store.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace budstikke::queue {
namespace asio = boost::asio;

namespace {

support::failure reply_failure(const redisReply* r, std::string_view what) {
  return support::fail(fmt::format("{}: Redis answered '{}'", what, as_string(r)),
                       std::make_error_code(std::errc::io_error));
}


}  // namespace

campaign_writer::campaign_writer(connection& conn, keys k, campaign_definition def, std::size_t batch)
    : conn_(conn), keys_(std::move(k)), def_(std::move(def)), batch_(batch),
      stream_key_(keys_.recipients(def_.id)) {}

asio::awaitable<support::result<void>> campaign_writer::async_create() {
  if (!valid_campaign_id(def_.id))
    co_return support::fail(
        fmt::format("campaign id '{}' is not valid: use 1-{} of A-Z a-z 0-9 . _ -", def_.id, max_id_length));
  auto campaign_key = keys_.campaign(def_.id);
  request req;
  // HSETNX on `id` claims the campaign: a second enqueue with the same id is refused, never merged.
  req.command("HSETNX", campaign_key, "id", def_.id);
  if (auto ec = co_await conn_.async_exec(req, replies_)) co_return redis_failure(conn_.config(), ec);
  if (as_integer(replies_[0].get()).value_or(0) != 1) {
    if (is_error(replies_[0].get())) co_return reply_failure(replies_[0].get(), "creating the campaign");
    co_return support::fail(fmt::format("campaign '{}' already exists", def_.id),
                            std::make_error_code(std::errc::file_exists));
  }
  req.clear();
  auto fields = def_.to_fields();
  req.begin(2 + 2 * fields.size()).arg("HSET").arg(campaign_key);
  for (const auto& [name, value] : fields) req.arg(name).arg(value);
  req.command("XGROUP", "CREATE", stream_key_, consumer_group, "0", "MKSTREAM");
  req.command("ZADD", keys_.index(),
              std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count(),
              def_.id);
  co_return co_await exec_checked(req, "creating the campaign");
}

void campaign_writer::add(std::string_view to, std::string_view member, std::string_view data_json) {
  pending_.command("XADD", stream_key_, "*", field_to, to, field_member, member, field_data, data_json);
  ++added_;
}

asio::awaitable<support::result<void>> campaign_writer::async_flush() {
  if (pending_.empty()) co_return support::result<void>{};
  auto done = co_await exec_checked(pending_, "adding recipients");
  pending_.clear();
  co_return done;
}

asio::awaitable<support::result<void>> campaign_writer::async_seal(bool serve) {
  if (auto flushed = co_await async_flush(); !flushed) co_return flushed;
  request req;
  req.command("HSET", keys_.campaign(def_.id), "total", added_);
  if (serve) req.command("ZADD", keys_.registry(), def_.priority, def_.id);
  co_return co_await exec_checked(req, "sealing the campaign");
}

asio::awaitable<support::result<void>> campaign_writer::exec_checked(const request& req, std::string_view what) {
  if (auto ec = co_await conn_.async_exec(req, replies_)) co_return redis_failure(conn_.config(), ec);
  for (auto& r : replies_)
    if (is_error(r.get())) co_return reply_failure(r.get(), what);
  co_return support::result<void>{};
}

asio::awaitable<support::result<campaign_status>> async_read_status(connection& conn, const keys& k,
                                                                     std::string_view id) {
  request req;
  req.command("HMGET", k.campaign(id), "state", "channel", "category", "tenant", "priority", "total",
              "created_at", "finished_at", "id");
  req.command("HMGET", k.counts(id), "sent", "failed", "skipped", "ambiguous", "resent", "retrying", "retried",
              "requeued");
  req.command("XLEN", k.recipients(id));
  req.command("XLEN", k.dead(id));
  std::vector<reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) co_return redis_failure(conn.config(), ec);
  const redisReply* meta = replies[0].get();
  if (meta->type != REDIS_REPLY_ARRAY || meta->elements != 9 || is_nil(meta->element[8]))
    co_return support::fail(fmt::format("campaign '{}' does not exist", id), campaign_missing);
  campaign_status s;
  s.id = std::string(id);
  s.state = std::string(as_string(meta->element[0]));
  s.channel = std::string(as_string(meta->element[1]));
  s.category = std::string(as_string(meta->element[2]));
  s.tenant = std::string(as_string(meta->element[3]));
  s.priority = static_cast<int>(as_integer(meta->element[4]).value_or(0));
  s.total = as_integer(meta->element[5]);
  s.created_at = std::string(as_string(meta->element[6]));
  s.finished_at = std::string(as_string(meta->element[7]));
  const redisReply* counts = replies[1].get();
  if (counts->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < counts->elements && i < s.counts.size(); ++i)
      s.counts[i] = as_integer(counts->element[i]).value_or(0);
    if (counts->elements > s.counts.size()) s.resent = as_integer(counts->element[s.counts.size()]).value_or(0);
    if (counts->elements > s.counts.size() + 1)
      s.retrying = as_integer(counts->element[s.counts.size() + 1]).value_or(0);
  }
  // Entries moved back for a retry or requeued from the dead letters are not more recipients.
  s.enqueued = as_integer(replies[2].get()).value_or(0);
  if (counts->type == REDIS_REPLY_ARRAY && counts->elements == s.counts.size() + 4)
    s.enqueued -= as_integer(counts->element[s.counts.size() + 2]).value_or(0) +
                  as_integer(counts->element[s.counts.size() + 3]).value_or(0);
  s.dead_letters = as_integer(replies[3].get()).value_or(0);
  co_return s;
}

asio::awaitable<std::error_code> async_list_campaigns(connection& conn, const keys& k, bool active_only,
                                                      std::vector<std::string>& ids,
                                                      const std::optional<std::string>& only) {
  ids.clear();
  if (only) {
    ids.push_back(*only);
    co_return std::error_code{};
  }
  request req;
  req.command("ZRANGE", active_only ? k.registry() : k.index(), 0, -1);
  std::vector<reply_ptr> replies;
  if (auto ec = co_await conn.async_exec(req, replies)) co_return ec;
  const redisReply* r = replies[0].get();
  if (r->type == REDIS_REPLY_ARRAY) {
    for (std::size_t i = 0; i < r->elements; ++i) ids.emplace_back(as_string(r->element[i]));
  }
  co_return std::error_code{};
}

void append_record_outcomes(request& req, const keys& k, std::string_view campaign_id,
                            std::string_view now, const std::vector<outcome_record>& records) {
  req.begin_eval(record_outcomes_script, 7, 2 + record_arity * records.size());
  req.arg(k.recipients(campaign_id)).arg(k.counts(campaign_id)).arg(k.outcomes(campaign_id))
      .arg(k.campaign(campaign_id)).arg(k.inflight(campaign_id)).arg(k.retry(campaign_id)).arg(k.dead(campaign_id));
  req.arg(consumer_group).arg(now);
  for (const auto& r : records) {
    std::string_view state = r.retry_in_ms ? "retry" : r.state ? to_string(*r.state) : "release";
    req.arg(r.entry_id).arg(state).arg(r.member).arg(r.reason).arg(r.resent ? "r" : "").arg(r.attempts)
        .arg(r.reply).arg(r.retry_in_ms.value_or(0)).arg(r.paused).arg(r.deferred_ms);
  }
}

void append_move_due_retries(request& req, const keys& k, std::string_view campaign_id, std::size_t limit) {
  req.eval(move_due_retries_script, 3, k.retry(campaign_id), k.recipients(campaign_id), k.counts(campaign_id), limit);
}

void append_requeue_dead(request& req, const keys& k, std::string_view campaign_id,
                         std::span<const std::string> dead_letter_ids) {
  req.begin_eval(requeue_dead_script, 4, dead_letter_ids.size())
      .arg(k.dead(campaign_id)).arg(k.recipients(campaign_id)).arg(k.counts(campaign_id)).arg(k.campaign(campaign_id));
  for (const auto& id : dead_letter_ids) req.arg(id);
}

void append_transition(request& req, const keys& k, std::string_view campaign_id, std::string_view target,
                       std::string_view now, std::span<const std::string_view> from) {
  req.begin_eval(transition_script, 1, 2 + from.size()).arg(k.campaign(campaign_id)).arg(target).arg(now);
  for (auto state : from) req.arg(state);
}

void begin_append_events(request& req, const keys& k, std::size_t max_len, std::string_view at, std::size_t events) {
  req.begin_eval(append_events_script, 1, 2 + event_args * events).arg(k.events()).arg(max_len).arg(at);
}

void append_event(request& req, std::string_view campaign, std::string_view entry, std::string_view member,
                  channel ch, std::string_view state, std::string_view reason, std::string_view reply,
                  std::uint32_t attempt) {
  req.arg(campaign).arg(entry).arg(member).arg(to_string(ch)).arg(state).arg(reason).arg(reply).arg(attempt);
}

}  // namespace budstikke::queue
