#include "engine/shard.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <deque>
#include <map>
#include <random>
#include <vector>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "adapters/sms_http/messenger.hpp"
#include "adapters/sms_http/phone.hpp"
#include "adapters/smtp/messenger.hpp"
#include "engine/event.hpp"
#include "engine/limits.hpp"
#include "support/log.hpp"
#include "engine/metrics.hpp"
#include "engine/quiet_hours.hpp"
#include "engine/renderer.hpp"
#include "engine/retry.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "queue/rate_limit.hpp"
#include "templates/address.hpp"
#include "support/rfc3339.hpp"

namespace budstikke::engine {
namespace asio = boost::asio;
using queue::final_state;
using queue::reply_ptr;
using queue::request;

namespace {

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "budstikke";
  return buf;
}

std::int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Template data beyond this is refused: a buggy portal must not make a shard allocate without bound.
constexpr std::size_t max_data_bytes = 64 * 1024;

// Campaigns of this priority take the urgent lane: read before any other, a share of the window
// kept free for them, and first in line for the wire.
constexpr int urgent_priority = queue::max_priority;

// Due retries moved back into a campaign's stream per mover call: bounds one script's run time.
constexpr std::size_t retry_move_batch = 500;

}  // namespace

class shard::impl final : public adapters::delivery_listener {
 public:
  impl(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals)
      : cfg_(cfg),
        index_(index),
        until_idle_(until_idle),
        totals_(totals),
        cell_(metrics::global().shard(index)),
        ioc_(1),
        keys_(cfg.key_prefix),
        pull_conn_(ioc_.get_executor(), cfg.redis),
        record_conn_(ioc_.get_executor(), cfg.redis),
        control_conn_(ioc_.get_executor(), cfg.redis),
        mark_conn_(ioc_.get_executor(), cfg.redis),
        limit_conn_(ioc_.get_executor(), cfg.redis),
        limits_(cfg.limits, keys_),
        pull_wake_(ioc_.get_executor()),
        record_wake_(ioc_.get_executor()),
        registry_wake_(ioc_.get_executor()),
        mark_wake_(ioc_.get_executor()),
        limit_wake_(ioc_.get_executor()),
        drained_(ioc_.get_executor()),
        loops_done_(ioc_.get_executor()),
        jitter_(std::random_device{}()) {
    consumer_ = fmt::format("{}-{}", cfg.engine.consumer.empty() ? host_name() : cfg.engine.consumer, index);
    send_window_ = cfg.engine.send_window ? cfg.engine.send_window
                                          : 4 * (cfg.smtp.connections + (cfg.sms.gateway ? cfg.sms.gateway->concurrency : 0));
    // Slots only the urgent lane may fill, so an urgent message never waits for a slow campaign's slots.
    urgent_reserve_ = std::min(cfg.engine.read_batch, cfg.engine.window / 4);
    slots_.reserve(cfg.engine.window);
    free_.reserve(cfg.engine.window);
    for (std::size_t i = 0; i < cfg.engine.window; ++i) {
      slots_.push_back(std::make_unique<slot>());
      slots_.back()->d.slot = static_cast<std::uint32_t>(i);
      free_.push_back(static_cast<std::uint32_t>(cfg.engine.window - 1 - i));
    }
    pool_ = adapters::smtp::make_smtp_messenger(ioc_.get_executor(), cfg.smtp, *this);
    if (cfg.sms.gateway) sms_ = adapters::sms_http::make_sms_messenger(ioc_.get_executor(), *cfg.sms.gateway, *this);
  }

  bool run() {
    // [this] is safe in every handler of ioc_: it is our member, run() returns before we are
    // destroyed, and what is still queued then is destroyed with ioc_, never run.
    asio::co_spawn(ioc_, main_loop(), [this](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("shard stopped by an internal error", {{"shard", index_}, {"error", ex.what()}});
        }
        fatal_ = true;
      }
      ioc_.stop();
    });
    ioc_.run();
    return !fatal_;
  }

  void request_stop() {
    asio::post(ioc_, [this] {  // safe: see run()
      if (stopping_) return;
      stopping_ = true;
      pull_wake_.notify();
      registry_wake_.notify();
    });
  }

 private:
  enum class serve_mode {
    send,        // render and send
    fail_all,    // the definition is unusable (bad field, templates that do not compile): fail each recipient with the reason
    not_served,  // this engine has no adapter for the channel: leave the entries to one that has
  };

  struct campaign_rt {
    queue::campaign_definition def;
    std::string stream_key;
    std::string inflight_key;
    std::unique_ptr<campaign_renderer> renderer;
    serve_mode mode = serve_mode::send;
    std::string unusable_reason;
    const category_policy* policy = nullptr;
    bool active = true;       // state == active
    bool quiet = false;       // in quiet hours: not read, and what it holds goes back unsent
    sys_ms quiet_change = sys_ms::min();  // when `quiet` is to be evaluated again
    int tenant_bucket = -1;   // its tenant's rate limit, if one is configured
    bool in_registry = true;
    // Consumers whose pending entries this shard takes over, its own first: entries an earlier
    // run of this consumer read but never recorded, then those of consumers found dead.
    std::deque<std::string> recover;
    std::string recover_cursor = "-";
    bool own_recovered = false;       // new entries are read only after the own backlog
    bool recover_after_drain = false;  // a read failed mid-way: re-take the own backlog once drained
    bool exhausted = false;   // the last read for new entries found none
    int weight = 1;
    int current = 0;          // smooth weighted round-robin state (between the campaigns of its tenant)
    bool urgent = false;      // priority 9: the urgent lane
    std::size_t held = 0;     // slots holding this campaign's entries
    std::vector<std::uint32_t> to_record;
    metrics::campaign_handle series;  // its counters in /metrics

    bool served() const { return mode != serve_mode::not_served && active && !quiet; }
    bool recovering() const { return !recover.empty() || !own_recovered || recover_after_drain; }
  };

  struct slot {
    adapters::delivery d;
    campaign_rt* campaign = nullptr;
    std::string entry_id;
    std::string member;
    std::string reason;
    std::string reply;                 // the relay's or gateway's last answer
    std::optional<final_state> state;  // nullopt when recorded: only release the in-flight mark (or retry)
    std::optional<std::int64_t> retry_in_ms;  // set: recorded as a retry, due after this delay
    std::uint32_t attempts = 0;
    std::uint32_t paused_retries = 0;  // transient answers that carried a Retry-After
    bool marked = false;   // its in-flight mark is written: it may be on the wire
    bool resent = false;   // it was on the wire when an engine stopped, and is sent again
    std::chrono::steady_clock::time_point pushed_at;  // for the relay round-trip metric
    std::chrono::steady_clock::time_point limited_at;  // when it began to wait for rate-limit tokens
  };

  struct recovery_info {
    std::int64_t deliveries = 0;  // times read before (XPENDING)
    bool was_on_wire = false;     // its in-flight mark survived
    std::string_view from;        // the consumer it came from
  };

  asio::awaitable<void> main_loop() {
    log::info("shard started", {{"shard", index_}, {"consumer", consumer_}, {"send_window", send_window_}});
    co_await heartbeat();
    co_await refresh_registry();
    spawn(recorder_loop());
    spawn(mark_loop());
    if (limits_.enabled()) spawn(limit_loop());
    spawn(registry_loop());
    co_await pull_loop();

    // Stop: no more reads. What waits to be marked is handed back (it stays pending for this
    // consumer and is taken up again on the next start); waiting retries stay in Redis.
    pulling_ = false;
    cell_.ready.store(false, std::memory_order_relaxed);
    mark_wake_.notify();
    for (auto idx : ready_) hand_back(idx);
    ready_.clear();
    hand_back_limited(nullptr);
    pool_->close();
    if (sms_) sms_->close();
    auto deadline = std::chrono::steady_clock::now() + cfg_.engine.shutdown_grace;
    while (held_ > 0) {
      if (stopping_ && std::chrono::steady_clock::now() >= deadline) {
        log::warn("shutdown grace over; unrecorded messages stay pending for the next start",
                  {{"shard", index_}, {"held", held_}});
        abandon_records_ = true;
        break;
      }
      co_await drained_.wait_for(std::chrono::milliseconds(100));
    }
    loops_stop_ = true;
    record_wake_.notify();
    registry_wake_.notify();
    mark_wake_.notify();
    limit_wake_.notify();
    while (loops_running_ > 0) co_await loops_done_.wait_for(std::chrono::milliseconds(100));
    if (held_ == 0) {
      co_await pool_->async_wait_closed();
      if (sms_) co_await sms_->async_wait_closed();
      // A clean stop: nothing of ours is pending any more, so nobody needs to wait for our key to expire.
      request bye;
      bye.command("DEL", keys_.consumer_alive(consumer_));
      std::vector<reply_ptr> replies;
      co_await control_conn_.async_exec(bye, replies);
    }
    log::info("shard stopped", {{"shard", index_}});
  }

  void spawn(asio::awaitable<void> loop) {
    ++loops_running_;
    asio::co_spawn(ioc_, std::move(loop), [this](std::exception_ptr e) {  // safe: see run()
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("shard stopped by an internal error", {{"shard", index_}, {"error", ex.what()}});
        }
        fatal_ = true;
        ioc_.stop();
      }
      if (--loops_running_ == 0) loops_done_.notify();
    });
  }

  // ---- pulling ----

  asio::awaitable<void> pull_loop() {
    std::vector<reply_ptr> replies;
    request req;
    const std::size_t want = std::min(cfg_.engine.read_batch, cfg_.engine.window);
    while (!stopping_) {
      // The urgent lane may use every free slot; the others leave urgent_reserve_ of them free.
      const std::size_t free_for_all = free_.size() > urgent_reserve_ ? free_.size() - urgent_reserve_ : 0;
      const bool urgent_readable = std::any_of(campaigns_.begin(), campaigns_.end(), [](const auto& kv) {
        return kv.second->urgent && kv.second->served() && !kv.second->recovering() && !kv.second->exhausted;
      });
      if (free_for_all < want && !(urgent_readable && !free_.empty())) {
        co_await pull_wake_.wait_for(std::chrono::seconds(1));
        continue;
      }
      if (campaign_rt* c = free_.size() >= want ? pick_recovery() : nullptr) {
        co_await recover_step(*c, want);
        continue;
      }
      if (campaign_rt* c = pick(free_for_all >= want)) {
        req.clear();
        req.command("XREADGROUP", "GROUP", queue::consumer_group, consumer_, "COUNT",
                    c->urgent ? std::min(want, free_.size()) : want, "STREAMS", c->stream_key, ">");
        if (auto ec = co_await pull_conn_.async_exec(req, replies)) {
          std::vector<campaign_rt*> affected(1, c);  // not a braced list: GCC 12 cannot keep its array across co_await
          co_await read_failed(ec, affected);
          continue;
        }
        if (queue::is_error(replies[0].get())) {
          read_refused(replies[0].get(), *c);
          continue;
        }
        if (take_entries(replies[0].get()) == 0) c->exhausted = true;
        continue;
      }

      // Nothing to read without waiting: block on every campaign's stream for new entries.
      std::vector<campaign_rt*> readable;
      for (auto& [id, c] : campaigns_)
        if (c->served() && !c->recovering()) readable.push_back(c.get());
      if (readable.empty() || free_for_all < readable.size()) {
        if (until_idle_ && co_await idle()) break;
        co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
        continue;
      }
      req.clear();
      // XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS k1..kn >..>
      req.begin(9 + 2 * readable.size())
          .arg("XREADGROUP").arg("GROUP").arg(queue::consumer_group).arg(consumer_)
          .arg("COUNT").arg(std::max<std::size_t>(1, std::min(want, free_for_all / readable.size())))
          .arg("BLOCK").arg(cfg_.engine.idle_poll.count());
      req.arg("STREAMS");
      for (auto* c : readable) req.arg(c->stream_key);
      for (std::size_t i = 0; i < readable.size(); ++i) req.arg(">");
      if (auto ec = co_await pull_conn_.async_exec(req, replies, cfg_.engine.idle_poll)) {
        co_await read_failed(ec, readable);
        continue;
      }
      if (queue::is_error(replies[0].get())) {
        // A stream or group vanished (campaign deleted by hand): let the registry sort it out.
        log::warn("blocking read refused", {{"shard", index_}, {"reply", queue::as_string(replies[0].get())}});
        registry_wake_.notify();
        co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
        continue;
      }
      std::size_t n = take_entries(replies[0].get());
      if (n == 0 && until_idle_ && co_await idle()) break;
    }
  }

  campaign_rt* pick_recovery() {
    for (auto& [id, c] : campaigns_) {
      if (!c->served()) continue;
      if (c->recover_after_drain && c->held == 0) {
        c->recover_after_drain = false;
        c->own_recovered = false;
      }
      if (!c->own_recovered && (c->recover.empty() || c->recover.front() != consumer_)) {
        c->recover.push_front(consumer_);
        c->recover_cursor = "-";
      }
      if (!c->recover.empty() && !(c->recover.front() == consumer_ && c->recover_after_drain)) return c.get();
    }
    return nullptr;
  }

  // The campaign to read next, of those that can be read without blocking: the urgent lane first;
  // otherwise a tenant by smooth weighted round-robin (engine.tenant_weights), then one of its
  // campaigns the same way by priority. A tenant with one big campaign gets its share, not more,
  // when another tenant sends too. Without `others_may_read` only urgent campaigns are chosen.
  campaign_rt* pick(bool others_may_read) {
    auto readable = [](const campaign_rt& c) { return c.served() && !c.recovering() && !c.exhausted; };
    auto round_robin = [](auto& candidates, auto weight_of, auto current_of) {
      std::remove_reference_t<decltype(candidates.front())> best = nullptr;
      int total = 0;
      for (auto* c : candidates) {
        current_of(c) += weight_of(c);
        total += weight_of(c);
        if (!best || current_of(c) > current_of(best)) best = c;
      }
      if (best) current_of(best) -= total;
      return best;
    };
    auto campaign_weight = [](campaign_rt* c) { return c->weight; };
    auto campaign_current = [](campaign_rt* c) -> int& { return c->current; };

    pick_scratch_.clear();
    for (auto& [id, c] : campaigns_)
      if (c->urgent && readable(*c)) pick_scratch_.push_back(c.get());
    if (!pick_scratch_.empty()) return round_robin(pick_scratch_, campaign_weight, campaign_current);
    if (!others_may_read) return nullptr;

    tenant_scratch_.clear();
    for (auto& [id, c] : campaigns_) {
      if (!readable(*c)) continue;
      auto& t = tenants_[c->def.tenant];
      if (std::find(tenant_scratch_.begin(), tenant_scratch_.end(), &t) == tenant_scratch_.end())
        tenant_scratch_.push_back(&t);
    }
    if (tenant_scratch_.empty()) return nullptr;
    auto* tenant = round_robin(tenant_scratch_, [](tenant_rt* t) { return t->weight; },
                               [](tenant_rt* t) -> int& { return t->current; });
    for (auto& [id, c] : campaigns_)
      if (readable(*c) && &tenants_[c->def.tenant] == tenant) pick_scratch_.push_back(c.get());
    return round_robin(pick_scratch_, campaign_weight, campaign_current);
  }

  // Takes over up to `want` pending entries of the consumer at the front of c.recover.
  asio::awaitable<void> recover_step(campaign_rt& c, std::size_t want) {
    const std::string consumer = c.recover.front();
    const bool own = consumer == consumer_;
    // Two shards claiming a dead consumer's entries at once: XCLAIM's min-idle lets one win.
    const auto min_idle = own ? std::chrono::milliseconds(0) : cfg_.engine.consumer_timeout / 2;
    request req;
    std::vector<reply_ptr> replies;
    req.command("XPENDING", c.stream_key, queue::consumer_group, "IDLE", min_idle.count(), c.recover_cursor, "+",
                std::min(want, free_.size()), consumer);
    if (auto ec = co_await pull_conn_.async_exec(req, replies)) {
      log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return;
    }
    const redisReply* pending = replies[0].get();
    if (queue::is_error(pending)) {
      read_refused(pending, c);
      co_return;
    }
    if (pending->type != REDIS_REPLY_ARRAY || pending->elements == 0) {
      c.recover.pop_front();
      c.recover_cursor = "-";
      if (own) c.own_recovered = true;
      co_return;
    }
    std::vector<std::string> ids;
    std::map<std::string, std::int64_t, std::less<>> deliveries;
    for (std::size_t i = 0; i < pending->elements; ++i) {
      const redisReply* p = pending->element[i];
      if (p->type != REDIS_REPLY_ARRAY || p->elements < 4) continue;
      ids.emplace_back(queue::as_string(p->element[0]));
      deliveries[ids.back()] = queue::as_integer(p->element[3]).value_or(1);
    }
    if (ids.empty()) {
      c.recover.pop_front();
      co_return;
    }
    req.clear();
    req.begin(5 + ids.size()).arg("XCLAIM").arg(c.stream_key).arg(queue::consumer_group).arg(consumer_)
        .arg(min_idle.count());
    for (auto& id : ids) req.arg(id);
    req.begin(2 + ids.size()).arg("HMGET").arg(c.inflight_key);
    for (auto& id : ids) req.arg(id);
    if (auto ec = co_await pull_conn_.async_exec(req, replies)) {
      log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return;
    }
    c.recover_cursor = "(" + ids.back();
    const redisReply* marks = replies[1].get();
    std::map<std::string_view, bool> on_wire;
    if (marks->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i < marks->elements && i < ids.size(); ++i) on_wire[ids[i]] = !queue::is_nil(marks->element[i]);
    std::size_t claimed = queue::for_each_entry_in(replies[0].get(), [&](const queue::stream_entry& e) {
      auto d = deliveries.find(e.id);
      recovery_info info{d == deliveries.end() ? 1 : d->second, on_wire[e.id], consumer};
      start_message(c, e, &info);
    });
    if (claimed > 0)
      log::info("took over pending entries", {{"shard", index_}, {"campaign", c.def.id}, {"from", consumer},
                                              {"entries", claimed}});
    if (own && claimed < ids.size())
      log::warn("pending entries no longer in the stream (deleted by hand?)",
                {{"shard", index_}, {"campaign", c.def.id}, {"entries", ids.size() - claimed}});
  }

  // True when no campaign has work left: nothing held here, no backlog to take over, and no
  // entry pending with any consumer (another shard, or a dead one whose entries await reclaiming).
  asio::awaitable<bool> idle() {
    if (!registry_loaded_ || held_ > 0 || !ready_.empty()) co_return false;
    request req;
    std::vector<campaign_rt*> checked;
    for (auto& [id, c] : campaigns_) {
      if (c->quiet && c->active) co_return false;  // its recipients wait for the end of quiet hours
      if (!c->served()) continue;
      if (c->recovering()) co_return false;
      req.command("XPENDING", c->stream_key, queue::consumer_group);
      req.command("ZCARD", keys_.retry(id));
      checked.push_back(c.get());
    }
    if (req.empty()) co_return true;
    std::vector<reply_ptr> replies;
    if (co_await pull_conn_.async_exec(req, replies)) co_return false;
    bool pending_elsewhere = false, retries_waiting = false;
    for (std::size_t i = 0; i + 1 < replies.size(); i += 2) {
      const redisReply* r = replies[i].get();
      if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && queue::as_integer(r->element[0]).value_or(0) > 0)
        pending_elsewhere = true;
      if (queue::as_integer(replies[i + 1].get()).value_or(0) > 0) retries_waiting = true;
    }
    if (pending_elsewhere) co_await find_dead_consumers(pull_conn_);
    co_return !pending_elsewhere && !retries_waiting;
  }

  asio::awaitable<void> read_failed(std::error_code ec, const std::vector<campaign_rt*>& affected) {
    // The reply may have been lost after Redis delivered entries to this consumer: those sit in
    // our pending list, so each affected campaign re-takes its own backlog once its slots drain.
    for (auto* c : affected) c->recover_after_drain = true;
    cell_.ready.store(false, std::memory_order_relaxed);
    log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
    co_await backoff_wait();
  }

  void read_refused(const redisReply* reply, campaign_rt& c) {
    log::error("Redis refused to read the campaign's stream; the campaign is not served",
               {{"shard", index_}, {"campaign", c.def.id}, {"reply", queue::as_string(reply)}});
    c.mode = serve_mode::not_served;
  }

  asio::awaitable<void> backoff_wait() {
    asio::steady_timer t(ioc_);
    t.expires_after(std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 1000)(jitter_)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  std::size_t take_entries(const redisReply* reply) {
    campaign_rt* c = nullptr;
    return queue::for_each_entry(reply, [&](std::string_view stream, const queue::stream_entry& e) {
      if (!c || c->stream_key != stream) c = campaign_by_stream(stream);
      if (!c) return;  // cannot happen: we only read streams we know
      c->exhausted = false;
      start_message(*c, e, nullptr);
    });
  }

  campaign_rt* campaign_by_stream(std::string_view stream) {
    for (auto& [id, c] : campaigns_)
      if (c->stream_key == stream) return c.get();
    return nullptr;
  }

  // ---- one message ----

  void start_message(campaign_rt& c, const queue::stream_entry& e, const recovery_info* recovered) {
    std::uint32_t idx = free_.back();
    free_.pop_back();
    ++held_;
    ++c.held;
    slot& s = *slots_[idx];
    s.campaign = &c;
    s.entry_id.assign(e.id);
    s.member.assign(e.member);
    s.attempts = e.attempt;
    s.paused_retries = e.paused;
    s.marked = false;
    s.resent = false;
    s.reason.clear();
    s.reply.clear();
    update_gauges();
    if (!recovered) metrics::global().observe_queue_lag(c.def.kind, seconds_since_entry(e.id));
    if (recovered) {
      if (recovered->deliveries >= static_cast<std::int64_t>(cfg_.engine.max_deliveries)) {
        finish(idx, final_state::failed,
               fmt::format("poison: read {} times without an outcome", recovered->deliveries));
        return;
      }
      if (recovered->was_on_wire) {
        bool resend = c.def.kind == queue::channel::email ? c.policy->resend_ambiguous_email
                                                          : c.policy->resend_ambiguous_sms;
        if (!resend) {
          finish(idx, final_state::ambiguous,
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
      finish(idx, final_state::failed, c.unusable_reason);
      return;
    }
    if (!e.well_formed) {
      finish(idx, final_state::failed, "malformed stream entry: field 'to' missing or empty");
      return;
    }
    if (e.data.size() > max_data_bytes) {
      finish(idx, final_state::failed, "template data larger than 64 KiB");
      return;
    }
    auto problem = c.def.kind == queue::channel::sms ? prepare_sms(c, e, s.d) : prepare_email(c, e, s.d);
    if (problem) {
      finish(idx, problem->state, problem->reason);
      return;
    }
    to_send(idx);
  }

  // Rendered (or due for a retry): on to the rate limits, the in-flight mark, the adapter. A
  // message already marked (resent after a crash, or retried) needs no new mark.
  void to_send(std::uint32_t idx) {
    slot& s = *slots_[idx];
    if (limits_.enabled()) {
      if (limit_group* g = group_for(s)) {
        s.limited_at = std::chrono::steady_clock::now();
        g->waiting.push_back(idx);
        ++limited_;
        // A group with earlier messages is already known to the limit loop.
        if (g->waiting.size() == 1) limit_wake_.notify();
        return;
      }
    }
    if (s.marked) send(idx);
    else enqueue_ready(idx);
  }

  // In line for its in-flight mark: an urgent message ahead of everything but earlier urgent ones.
  void enqueue_ready(std::uint32_t idx) {
    if (slots_[idx]->campaign->urgent) {
      auto pos = std::find_if(ready_.begin(), ready_.end(), [&](std::uint32_t i) { return !slots_[i]->campaign->urgent; });
      ready_.insert(pos, idx);
    } else {
      ready_.push_back(idx);
    }
    mark_wake_.notify();
  }

  // The address checked (an IDN domain in its xn-- form; a UTF-8 local part needs SMTPUTF8 from
  // the relay), then the message rendered into the delivery.
  std::optional<render_failure> prepare_email(campaign_rt& c, const queue::stream_entry& e, adapters::delivery& d) {
    return c.renderer->prepare_email(e.id, e.to, e.member, e.data, d);
  }

  // The number checked and in E.164 (consent, suppression and the gateway all see that form),
  // then the text with its encoding and segments.
  std::optional<render_failure> prepare_sms(campaign_rt& c, const queue::stream_entry& e, adapters::delivery& d) {
    if (auto problem = adapters::sms_http::normalise_phone(e.to, cfg_.sms.default_region, d.envelope_to))
      return render_failure{final_state::skipped, std::string(*problem)};
    if (auto problem = c.renderer->render_sms(d.envelope_to, e.member, e.data, sms_text_)) return problem;
    d.data.assign(sms_text_.text());
    d.sms_ucs2 = sms_text_.coding() == templates::sms::encoding::ucs2;
    d.sms_segments = static_cast<std::uint16_t>(sms_text_.segments());
    d.envelope_from = c.def.from_address.empty() ? cfg_.sms.gateway->default_from : c.def.from_address;
    return std::nullopt;
  }

  // Writes the in-flight marks of ready messages (one round trip per batch), then sends them.
  // At most send_window_ messages are marked and unanswered at once: that, not the read-ahead,
  // bounds how many can be ambiguous after a crash.
  asio::awaitable<void> mark_loop() {
    request req;
    std::vector<reply_ptr> replies;
    std::vector<std::uint32_t> batch;
    std::map<campaign_rt*, std::vector<std::uint32_t>> by_campaign;
    while (!loops_stop_) {
      if (ready_.empty() || on_wire_ >= send_window_ || !pulling_) {
        co_await mark_wake_.wait_for(std::chrono::milliseconds(200));
        continue;
      }
      batch.clear();
      by_campaign.clear();
      while (!ready_.empty() && on_wire_ + batch.size() < send_window_) {
        batch.push_back(ready_.front());
        ready_.pop_front();
      }
      for (auto idx : batch) by_campaign[slots_[idx]->campaign].push_back(idx);
      // One round trip: consent and suppression as they are now (a withdrawal written a moment
      // ago counts), and the in-flight marks. A message that must be skipped was marked for
      // nothing; recording it clears the mark.
      req.clear();
      auto now = std::to_string(epoch_ms());
      for (auto& [c, idxs] : by_campaign) {
        for (auto idx : idxs) {
          const slot& sl = *slots_[idx];
          queue::append_consent_lookup(req, keys_, c->def.kind, c->def.category, sl.member, sl.d.envelope_to,
                                       c->policy->check_consent);
        }
        req.begin(2 + 2 * idxs.size()).arg("HSET").arg(c->inflight_key);
        for (auto idx : idxs) req.arg(slots_[idx]->entry_id).arg(now);
      }
      marking_ = batch.size();
      auto ec = co_await mark_conn_.async_exec(req, replies);
      marking_ = 0;
      bool refused = false;
      if (!ec) {
        std::size_t r = 0;
        for (auto& [c, idxs] : by_campaign) {
          r += (c->policy->check_consent ? 2 : 1) * idxs.size();
          refused = refused || queue::is_error(replies[r++].get());
        }
      }
      if (ec || refused) {
        log::warn("cannot mark messages in flight; retrying",
                  {{"shard", index_}, {"error", ec ? ec.message() : std::string("refused")}});
        if (!pulling_) {
          for (auto idx : batch) hand_back(idx);
          continue;
        }
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) ready_.push_front(*it);
        co_await backoff_wait();
        continue;
      }
      if (!pulling_) {
        // Stopped while marking: nothing of this batch went out.
        for (auto idx : batch) {
          slots_[idx]->marked = true;
          hand_back(idx);
        }
        continue;
      }
      std::size_t r = 0;
      for (auto& [c, idxs] : by_campaign) {
        for (auto idx : idxs) {
          slot& sl = *slots_[idx];
          sl.marked = true;
          const redisReply* consent = c->policy->check_consent ? replies[r++].get() : nullptr;
          const redisReply* suppressed = replies[r++].get();
          auto problem = queue::lookup_problem(consent, suppressed, c->policy->consent_required, !sl.member.empty());
          if (problem) finish(idx, final_state::skipped, *problem);
          else if (!c->active || c->quiet) hand_back(idx);  // paused or quiet while it was being marked
          else send(idx);
        }
        ++r;  // the HSET
      }
    }
  }

  // ---- rate limits ----

  // Messages that pass the same buckets wait in one queue, so that an exhausted bucket (one
  // domain, one tenant) holds back only its own messages.
  struct limit_group {
    std::vector<const queue::token_bucket*> buckets;
    std::vector<metrics::limiter> kinds;
    std::deque<std::uint32_t> waiting;
    std::chrono::steady_clock::time_point next_try{};  // no token before this
    metrics::limiter held_by = metrics::limiter::global;  // the bucket that last held it back
  };

  // The group of the buckets a message must pass; nullptr when none applies to it.
  limit_group* group_for(const slot& s) {
    const campaign_rt& c = *s.campaign;
    const int channel = limits_.channel(c.def.kind);
    const int domain = c.def.kind == queue::channel::email ? limits_.domain(templates::address_domain(s.d.envelope_to)) : -1;
    const int key[4] = {limits_.global(), channel, c.tenant_bucket, domain};
    if (key[0] < 0 && key[1] < 0 && key[2] < 0 && key[3] < 0) return nullptr;
    auto [it, fresh] = groups_.try_emplace({key[0], key[1], key[2], key[3]});
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

  // Beside the mark loop, on its own connection, so that taking tokens for the next batch
  // overlaps marking this one.
  asio::awaitable<void> limit_loop() {
    while (!loops_stop_) {
      if (limited_ > 0 && pulling_) {
        bool asked = co_await take_tokens();  // not inside &&: GCC 12 miscompiles co_await in conditions
        if (asked) continue;
      }
      co_await limit_wake_.wait_for(until_tokens());
    }
  }

  // One round trip: every group with waiting messages and no known wait asks for its share of
  // the room in the send window. Granted messages go on to be marked (or, already marked, out);
  // a group refused waits until the script says the next token is due, without polling.
  // False when there was nothing to ask for.
  asio::awaitable<bool> take_tokens() {
    if (!room_for_tokens()) co_return false;
    const std::size_t busy = on_wire_ + ready_.size() + marking_;
    const auto now = std::chrono::steady_clock::now();
    asking_.clear();
    for (auto& [key, g] : groups_)
      if (!g.waiting.empty() && g.next_try <= now) asking_.push_back(&g);
    if (asking_.empty()) co_return false;
    const std::size_t share = std::max<std::size_t>(1, (send_window_ - busy) / asking_.size());
    token_req_.clear();
    for (auto* g : asking_)
      queue::append_take_tokens(token_req_, g->buckets, static_cast<std::int64_t>(std::min(share, g->waiting.size())));
    if (auto ec = co_await limit_conn_.async_exec(token_req_, token_replies_)) {
      log::warn("cannot take rate-limit tokens; retrying", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return true;
    }
    const auto after = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < asking_.size(); ++i) {
      limit_group& g = *asking_[i];
      auto grant = queue::parse_token_grant(token_replies_[i].get());
      if (!grant) {
        log::warn("rate-limit script refused; retrying",
                  {{"shard", index_}, {"reply", queue::as_string(token_replies_[i].get())}});
        g.next_try = after + std::chrono::seconds(1);
        continue;
      }
      if (grant->limiting >= 0) {
        g.held_by = g.kinds[static_cast<std::size_t>(grant->limiting)];
        g.next_try = after + grant->wait;
      }
      // Messages handed back meanwhile (a pause) have left the queue; only what is left moves.
      for (std::int64_t k = 0; k < grant->granted && !g.waiting.empty(); ++k) {
        std::uint32_t idx = g.waiting.front();
        g.waiting.pop_front();
        --limited_;
        slot& sl = *slots_[idx];
        metrics::global().observe_rate_limiter_wait(g.held_by, std::chrono::duration<double>(after - sl.limited_at).count());
        if (sl.marked) send(idx);
        else enqueue_ready(idx);
      }
    }
    co_return true;
  }

  // Tokens are asked for when half the send window is free (or all that waits fits): one
  // script call per half window, not one per answer that frees a slot.
  bool room_for_tokens() const {
    const std::size_t busy = on_wire_ + ready_.size() + marking_;
    return busy < send_window_ && send_window_ - busy >= std::min(limited_, std::max<std::size_t>(1, send_window_ / 2));
  }

  // How long until a waiting group may ask again (a day when none waits).
  std::chrono::steady_clock::duration until_tokens() const {
    if (limited_ == 0) return std::chrono::hours(24);
    if (!room_for_tokens()) return std::chrono::milliseconds(200);  // an outcome wakes us
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& [key, g] : groups_)
      if (!g.waiting.empty()) next = std::min(next, g.next_try);
    return std::max<std::chrono::steady_clock::duration>(std::chrono::milliseconds(0), next - std::chrono::steady_clock::now());
  }

  // Messages waiting for tokens go back (those of campaign `c`, or all).
  void hand_back_limited(const campaign_rt* c) {
    for (auto& [key, g] : groups_) {
      std::deque<std::uint32_t> keep;
      for (auto idx : g.waiting) {
        if (c && slots_[idx]->campaign != c) {
          keep.push_back(idx);
          continue;
        }
        --limited_;
        hand_back(idx);
      }
      g.waiting.swap(keep);
    }
  }

  // ---- quiet hours ----

  // Evaluates the campaign's quiet hours when their state may have changed. Entering them is
  // like a pause (what is read but not on the wire goes back); leaving them lets it be read again.
  void evaluate_quiet(campaign_rt& c, sys_ms now) {
    if (cfg_.quiet_hours.empty() || c.mode != serve_mode::send || now < c.quiet_change) return;
    auto q = quiet_hours_at(cfg_.quiet_hours, c.def.kind, c.def.category, now);
    c.quiet_change = q.until;
    if (q.quiet == c.quiet) return;
    c.quiet = q.quiet;
    if (q.quiet) {
      hold_back(c);
      if (index_ == 0)
        log::info("campaign waits for quiet hours", {{"campaign", c.def.id}, {"channel", queue::to_string(c.def.kind)},
                                                     {"category", c.def.category}, {"until", support::rfc3339(q.until)}});
    } else {
      c.exhausted = false;
      pull_wake_.notify();
      if (index_ == 0) log::info("quiet hours over: sending the campaign", {{"campaign", c.def.id}});
    }
  }

  // The earliest moment a campaign's quiet hours change.
  sys_ms update_quiet() {
    auto next = sys_ms::max();
    if (cfg_.quiet_hours.empty()) return next;
    auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
    for (auto& [id, c] : campaigns_) {
      if (c->mode != serve_mode::send) continue;
      evaluate_quiet(*c, now);
      next = std::min(next, c->quiet_change);
    }
    return next;
  }

  // ---- metrics ----

  void update_gauges() {
    cell_.slots_held.store(static_cast<std::int64_t>(held_), std::memory_order_relaxed);
    cell_.on_wire.store(static_cast<std::int64_t>(on_wire_), std::memory_order_relaxed);
  }

  // Seconds since the entry was added (its id is "<ms>-<seq>", in Redis's clock).
  static double seconds_since_entry(std::string_view entry_id) {
    auto ms = metrics::entry_time_ms(entry_id);
    return ms ? static_cast<double>(epoch_ms() - *ms) / 1000.0 : 0.0;
  }

  void observe_delivery(const slot& s, const adapters::delivery& d) {
    auto& m = metrics::global();
    const auto ch = s.campaign->def.kind;
    m.adapter_result(ch, d.result);
    m.observe_relay_roundtrip(ch, std::chrono::duration<double>(std::chrono::steady_clock::now() - s.pushed_at).count());
    if (d.result == adapters::outcome::accepted) m.observe_enqueue_to_accepted(ch, seconds_since_entry(s.entry_id));
    update_gauges();
  }

  void send(std::uint32_t idx) {
    slot& s = *slots_[idx];
    ++s.attempts;
    ++on_wire_;
    s.pushed_at = std::chrono::steady_clock::now();
    update_gauges();
    if (s.campaign->def.kind == queue::channel::sms) sms_->push(s.d);
    else pool_->push(s.d);
  }

  void on_delivered(adapters::delivery& d) override {
    std::uint32_t idx = d.slot;
    slot& s = *slots_[idx];
    --on_wire_;
    observe_delivery(s, d);
    mark_wake_.notify();
    if (limited_ > 0 && room_for_tokens()) limit_wake_.notify();
    s.reply.assign(d.reply);
    switch (d.result) {
      case adapters::outcome::accepted:
        finish(idx, final_state::sent, {});
        return;
      case adapters::outcome::permanent:
        finish(idx, final_state::failed, d.reply);
        return;
      case adapters::outcome::ambiguous:
        finish(idx, final_state::ambiguous, d.reply);
        return;
      case adapters::outcome::transient:
        break;
    }
    // The retry waits in Redis (the campaign's retry set), not in this slot: the slot is free
    // once the retry is recorded, and a restart does not lose it.
    auto plan = plan_retry(s.attempts, s.paused_retries, d.retry_after,
                           static_cast<std::uint32_t>(cfg_.engine.max_attempts), cfg_.engine.retry_backoff, jitter_());
    s.attempts = plan.attempts;
    s.paused_retries = plan.paused;
    if (plan.give_up) {
      finish(idx, final_state::failed, fmt::format("gave up after {} attempts: {}", s.attempts, d.reply));
      return;
    }
    finish(idx, std::nullopt, d.reply);
    s.retry_in_ms = plan.delay.count();
  }

  void finish(std::uint32_t idx, std::optional<final_state> state, std::string_view reason) {
    slot& s = *slots_[idx];
    s.state = state;
    s.retry_in_ms.reset();
    s.reason.assign(reason);
    s.campaign->to_record.push_back(idx);
    if (++records_waiting_ >= cfg_.engine.record_batch) record_wake_.notify();
  }

  void release(std::uint32_t idx) {
    slot& s = *slots_[idx];
    --s.campaign->held;
    s.campaign = nullptr;
    free_.push_back(idx);
    --held_;
    update_gauges();
    if (held_ == 0) drained_.notify();
    pull_wake_.notify();
  }

  // Not sent, and not to be sent by this run: the entry stays pending for this consumer. A mark
  // is cleared first (through the recorder), so the next run does not take it for ambiguous.
  void hand_back(std::uint32_t idx) {
    ++totals_.handed_back;
    if (slots_[idx]->marked && !slots_[idx]->resent) finish(idx, std::nullopt, {});
    else release(idx);
  }

  // ---- recording ----

  asio::awaitable<void> recorder_loop() {
    request req;
    std::vector<reply_ptr> replies;
    std::vector<std::pair<campaign_rt*, std::vector<std::uint32_t>>> batch;
    std::vector<queue::outcome_record> records;
    std::string now;
    while (true) {
      if (records_waiting_ == 0) {
        if (loops_stop_) break;
        co_await record_wake_.wait_for(std::chrono::milliseconds(50));
        continue;
      }
      if (records_waiting_ < cfg_.engine.record_batch && !loops_stop_)
        co_await record_wake_.wait_for(cfg_.engine.record_interval);

      req.clear();
      batch.clear();
      now = support::now_rfc3339();
      for (auto& [id, c] : campaigns_) {
        if (c->to_record.empty()) continue;
        records.clear();
        for (auto idx : c->to_record) {
          const slot& s = *slots_[idx];
          records.push_back({s.entry_id, s.state, s.member, s.reason, s.resent, s.attempts, s.reply, s.retry_in_ms,
                             s.paused_retries});
        }
        queue::append_record_outcomes(req, keys_, c->def.id, now, records);
        batch.emplace_back(c.get(), std::move(c->to_record));
        c->to_record.clear();
      }
      records_waiting_ = 0;
      // Idempotent (XACK decides what counts), so a lost reply is simply sent again, for as long
      // as it takes: slots stay held meanwhile, so pulling pauses and memory stays bounded.
      std::error_code ec;
      for (;;) {
        ec = co_await record_conn_.async_exec(req, replies);
        if (!ec || abandon_records_) break;
        log::warn("cannot record outcomes yet; retrying", {{"shard", index_}, {"error", ec.message()}});
        co_await backoff_wait();
      }
      if (ec) {
        // Shutdown grace is over: the entries stay pending and are taken up on the next start.
        for (auto& [c, idxs] : batch)
          for (auto idx : idxs) release(idx);
        continue;
      }
      request control;
      events_.clear();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& [c, idxs] = batch[i];
        const redisReply* r = replies[i].get();
        if (queue::is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
            r->element[2]->type != REDIS_REPLY_ARRAY || r->element[2]->elements != idxs.size()) {
          log::error("recording refused; entries stay pending",
                     {{"shard", index_}, {"campaign", c->def.id}, {"reply", queue::as_string(r)}});
          for (auto idx : idxs) release(idx);
          continue;
        }
        const redisReply* counted = r->element[2];
        for (std::size_t k = 0; k < idxs.size(); ++k) {
          slot& s = *slots_[idxs[k]];
          const auto how = queue::as_integer(counted->element[k]).value_or(0);
          if (how == 2) {  // a retry whose entry vanished: recorded failed
            s.state = final_state::failed;
            s.retry_in_ms.reset();
          }
          if (how != 0) {
            if (auto st = s.state) {
              count(*st);
              c->series->record(*st);
            } else if (s.retry_in_ms) {
              ++totals_.retries;
            }
            if (cfg_.engine.events_max_len > 0) events_.emplace_back(c, &s);
          }
          release(idxs[k]);
        }
        if (queue::as_integer(r->element[1]).value_or(0) == 1) {
          ++totals_.campaigns_finished;
          log::info("campaign finished", {{"campaign", c->def.id}, {"shard", index_}});
          control.command("ZREM", keys_.registry(), c->def.id);
        }
      }
      append_events(control, now);
      if (!control.empty()) co_await record_conn_.async_exec_retrying(control, replies, std::chrono::seconds(30));
    }
  }

  // One event per counted outcome, after the outcomes are recorded: the events stream is a global
  // key, so it cannot be written from the campaign's script (one cluster slot per script). A crash
  // between the two loses at most this batch's events; the counts stay exact. The slots were
  // released just now, synchronously: nothing has reused them yet.
  void append_events(request& req, std::string_view now) {
    if (events_.empty()) return;
    queue::begin_append_events(req, keys_, cfg_.engine.events_max_len, now, events_.size());
    for (auto [c, s] : events_) {
      std::string_view state = s->state ? queue::to_string(*s->state) : std::string_view("retrying");
      req.arg(c->def.id).arg(s->entry_id).arg(s->member).arg(queue::to_string(c->def.kind)).arg(state)
          .arg(s->reason).arg(s->reply).arg(s->attempts);
    }
  }

  void count(final_state s) {
    switch (s) {
      case final_state::sent: ++totals_.sent; break;
      case final_state::failed: ++totals_.failed; break;
      case final_state::skipped: ++totals_.skipped; break;
      case final_state::ambiguous: ++totals_.ambiguous; break;
    }
  }

  // ---- liveness, the registry, dead consumers ----

  // The next quiet-hours change on the steady clock the loops wait with.
  std::chrono::steady_clock::time_point quiet_deadline() const {
    if (quiet_next_ == sys_ms::max()) return std::chrono::steady_clock::time_point::max();
    auto left = quiet_next_ - std::chrono::system_clock::now();
    return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                  std::max<std::chrono::system_clock::duration>(left, {}));
  }

  asio::awaitable<void> heartbeat() {
    request req;
    req.command("SET", keys_.consumer_alive(consumer_), epoch_ms(), "PX", cfg_.engine.consumer_timeout.count());
    std::vector<reply_ptr> replies;
    if (auto ec = co_await control_conn_.async_exec(req, replies))
      log::warn("cannot refresh the liveness key", {{"shard", index_}, {"error", ec.message()}});
  }

  asio::awaitable<void> registry_loop() {
    auto next_registry = std::chrono::steady_clock::now() + cfg_.engine.registry_interval;
    auto next_heartbeat = std::chrono::steady_clock::now() + cfg_.engine.heartbeat_interval;
    auto next_scan = std::chrono::steady_clock::now() + cfg_.engine.consumer_timeout / 2;
    auto next_move = std::chrono::steady_clock::now() + cfg_.engine.retry_poll;
    while (!loops_stop_) {
      auto next = std::min({next_registry, next_heartbeat, next_scan, next_move, quiet_deadline()});
      co_await registry_wake_.wait_for(next - std::chrono::steady_clock::now());
      if (loops_stop_) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= quiet_deadline()) quiet_next_ = update_quiet();
      if (now >= next_heartbeat) {
        co_await heartbeat();
        next_heartbeat = now + cfg_.engine.heartbeat_interval;
      }
      if (now >= next_registry || stopping_) {
        if (!stopping_) co_await refresh_registry();
        next_registry = now + cfg_.engine.registry_interval;
      }
      if (now >= next_scan) {
        co_await find_dead_consumers(control_conn_);
        next_scan = now + cfg_.engine.consumer_timeout / 2;
      }
      if (now >= next_move) {
        if (!stopping_) co_await move_due_retries();
        next_move = std::chrono::steady_clock::now() + cfg_.engine.retry_poll;
      }
    }
  }

  // Due retries of the served campaigns go back into their streams, one pipeline for all. Each
  // move is one atomic script, so shards (of any process) doing it at once cannot move one twice.
  asio::awaitable<void> move_due_retries() {
    request req;
    std::vector<campaign_rt*> moved_for;
    for (auto& [id, c] : campaigns_) {
      if (!c->served()) continue;
      queue::append_move_due_retries(req, keys_, id, retry_move_batch);
      moved_for.push_back(c.get());
    }
    if (req.empty()) {
      if (index_ == 0) metrics::global().set_retry_set_size(0);
      co_return;
    }
    std::vector<reply_ptr> replies;
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot move due retries yet", {{"shard", index_}, {"error", ec.message()}});
      co_return;
    }
    std::int64_t waiting = 0;
    for (std::size_t i = 0; i < moved_for.size(); ++i) {
      const redisReply* r = replies[i].get();
      if (queue::is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        log::warn("moving due retries refused", {{"shard", index_}, {"campaign", moved_for[i]->def.id},
                                                 {"reply", queue::as_string(r)}});
        continue;
      }
      if (queue::as_integer(r->element[0]).value_or(0) > 0) {
        moved_for[i]->exhausted = false;
        pull_wake_.notify();
      }
      waiting += queue::as_integer(r->element[1]).value_or(0);
    }
    // Every shard serves every campaign, so one per process reports the total.
    if (index_ == 0) metrics::global().set_retry_set_size(waiting);
  }

  // Consumers with pending entries whose liveness key has expired are dead: their entries are
  // taken over (queued in the campaign's recover list).
  // `conn` is the calling coroutine's own connection (a connection serves one pipeline at a time).
  asio::awaitable<void> find_dead_consumers(queue::connection& conn) {
    auto since = std::chrono::steady_clock::now() - last_scan_;
    if (since < std::chrono::seconds(1)) co_return;
    last_scan_ = std::chrono::steady_clock::now();
    request req;
    std::vector<campaign_rt*> scanned;
    for (auto& [id, c] : campaigns_) {
      if (!c->served()) continue;
      req.command("XINFO", "CONSUMERS", c->stream_key, queue::consumer_group);
      scanned.push_back(c.get());
    }
    if (req.empty()) co_return;
    std::vector<reply_ptr> replies;
    if (co_await conn.async_exec(req, replies)) co_return;
    std::vector<std::pair<campaign_rt*, std::string>> candidates;
    for (std::size_t i = 0; i < scanned.size(); ++i) {
      const redisReply* list = replies[i].get();
      if (list->type != REDIS_REPLY_ARRAY) continue;
      for (std::size_t k = 0; k < list->elements; ++k) {
        const redisReply* info = list->element[k];
        if (info->type != REDIS_REPLY_ARRAY) continue;
        std::string_view name;
        std::int64_t pending = 0;
        for (std::size_t f = 0; f + 1 < info->elements; f += 2) {
          auto key = queue::as_string(info->element[f]);
          if (key == "name") name = queue::as_string(info->element[f + 1]);
          else if (key == "pending") pending = queue::as_integer(info->element[f + 1]).value_or(0);
        }
        if (pending > 0 && name != consumer_) candidates.emplace_back(scanned[i], std::string(name));
      }
    }
    if (candidates.empty()) co_return;
    req.clear();
    for (auto& [c, name] : candidates) req.command("EXISTS", keys_.consumer_alive(name));
    if (co_await conn.async_exec(req, replies)) co_return;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (queue::as_integer(replies[i].get()).value_or(1) != 0) continue;
      auto& [c, name] = candidates[i];
      if (std::find(c->recover.begin(), c->recover.end(), name) != c->recover.end()) continue;
      log::warn("consumer is dead; taking over its pending entries", {{"shard", index_}, {"campaign", c->def.id}, {"consumer", name}});
      c->recover.push_back(name);
      pull_wake_.notify();
    }
  }

  asio::awaitable<void> refresh_registry() {
    request req;
    std::vector<reply_ptr> replies;
    req.command("ZRANGE", keys_.registry(), 0, -1);
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read the campaign registry", {{"shard", index_}, {"error", ec.message()}});
      cell_.ready.store(false, std::memory_order_relaxed);
      co_await backoff_wait();
      co_return;
    }
    if (replies[0]->type != REDIS_REPLY_ARRAY) {
      log::warn("cannot read the campaign registry", {{"shard", index_}, {"reply", queue::as_string(replies[0].get())}});
      co_return;
    }
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < replies[0]->elements; ++i) ids.emplace_back(queue::as_string(replies[0]->element[i]));

    for (auto& [id, c] : campaigns_) c->in_registry = false;
    req.clear();
    std::vector<bool> fresh;  // per id: not known yet, so its whole hash is read
    for (auto& id : ids) {
      auto it = campaigns_.find(id);
      fresh.push_back(it == campaigns_.end());
      if (fresh.back()) {
        req.command("HGETALL", keys_.campaign(id));
      } else {
        it->second->in_registry = true;
        req.command("HGET", keys_.campaign(id), "state");
      }
    }
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read campaigns", {{"shard", index_}, {"error", ec.message()}});
      co_return;
    }
    // The replies come in the registry's order, fresh and known campaigns interleaved.
    std::size_t r = 0;
    request control;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::string& id = ids[i];
      const redisReply* reply = replies[r++].get();
      if (fresh[i]) {
        add_campaign(id, reply);
        continue;
      }
      auto& c = *campaigns_[id];
      auto state = queue::as_string(reply);
      bool was_active = c.active;
      c.active = state == "active";
      if (c.active && !was_active) {
        c.exhausted = false;
        pull_wake_.notify();
      }
      if (was_active && !c.active) pause_campaign(c);
      // Done, or cancelled with nothing of ours left in flight: the registry no longer needs it.
      if (state == "done" || (state == "cancelled" && c.held == 0)) control.command("ZREM", keys_.registry(), id);
    }
    quiet_next_ = update_quiet();
    if (!control.empty()) co_await control_conn_.async_exec(control, replies);
    registry_loaded_ = true;
    cell_.ready.store(true, std::memory_order_relaxed);
    // Forget campaigns that left the registry once nothing of theirs is in flight.
    for (auto it = campaigns_.begin(); it != campaigns_.end();) {
      if (!it->second->in_registry && it->second->held == 0 && it->second->to_record.empty()) it = campaigns_.erase(it);
      else ++it;
    }
  }

  // Paused or cancelled: what is read but not yet on the wire goes back (it stays pending for
  // this consumer); what is on the wire finishes. On resume the own backlog is taken up again,
  // so pause + resume sends every recipient exactly once.
  void pause_campaign(campaign_rt& c) {
    hold_back(c);
    log::info("campaign paused or cancelled: not sending more", {{"shard", index_}, {"campaign", c.def.id}});
  }

  // What of the campaign is read but not yet on the wire goes back (stays pending for us).
  void hold_back(campaign_rt& c) {
    std::deque<std::uint32_t> keep;
    for (auto idx : ready_) {
      if (slots_[idx]->campaign == &c) hand_back(idx);
      else keep.push_back(idx);
    }
    ready_.swap(keep);
    hand_back_limited(&c);
    c.recover_after_drain = true;
  }

  void add_campaign(const std::string& id, const redisReply* hash) {
    auto c = std::make_unique<campaign_rt>();
    c->def.id = id;
    c->stream_key = keys_.recipients(id);
    c->inflight_key = keys_.inflight(id);
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    if (hash && hash->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i + 1 < hash->elements; i += 2)
        fields.emplace_back(queue::as_string(hash->element[i]), queue::as_string(hash->element[i + 1]));
    std::string error;
    auto def = queue::campaign_definition::from_fields(id, fields, error);
    if (!def) {
      c->mode = serve_mode::fail_all;
      c->unusable_reason = "campaign definition unusable: " + error;
    } else {
      c->def = std::move(*def);
      c->weight = c->def.priority + 1;
      c->urgent = c->def.priority >= urgent_priority;
      if (auto it = cfg_.engine.tenant_weights.find(c->def.tenant); it != cfg_.engine.tenant_weights.end())
        tenants_[c->def.tenant].weight = it->second;
      c->active = c->def.state == "active";
      if (c->def.kind != queue::channel::email && !(c->def.kind == queue::channel::sms && sms_)) {
        c->mode = serve_mode::not_served;
        if (index_ == 0) log::warn("no adapter for the campaign's channel in this engine; not served", {{"campaign", id}, {"channel", queue::to_string(c->def.kind)}});
      } else {
        c->renderer = campaign_renderer::compile(c->def, cfg_, error);
        if (!c->renderer) {
          c->mode = serve_mode::fail_all;
          c->unusable_reason = "campaign templates unusable: " + error;
        }
      }
    }
    c->policy = &cfg_.policy(c->def.category);
    if (c->mode == serve_mode::fail_all && index_ == 0)
      log::error("campaign cannot be sent; each recipient is recorded failed", {{"campaign", id}, {"error", c->unusable_reason}});
    else if (c->mode == serve_mode::send && index_ == 0)
      log::info("serving campaign", {{"campaign", id}, {"priority", c->def.priority}});
    c->series = metrics::global().campaign(id, c->def.tenant, c->def.kind);
    c->tenant_bucket = limits_.tenant(c->def.tenant);
    if (c->mode == serve_mode::send)
      evaluate_quiet(*c, std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()));
    campaigns_.emplace(id, std::move(c));
    pull_wake_.notify();
  }

  const config& cfg_;
  std::size_t index_;
  bool until_idle_;
  engine_totals& totals_;
  metrics::shard_cell& cell_;
  asio::io_context ioc_;
  queue::keys keys_;
  queue::connection pull_conn_, record_conn_, control_conn_, mark_conn_;
  queue::connection limit_conn_;  // rate-limit tokens (used only when limits are configured)
  std::unique_ptr<adapters::smtp::smtp_messenger> pool_;
  std::unique_ptr<adapters::sms_http::sms_messenger> sms_;  // when sms.gateway is configured
  templates::sms::message sms_text_;  // reused for every SMS
  std::vector<std::unique_ptr<slot>> slots_;
  std::vector<std::uint32_t> free_;
  std::deque<std::uint32_t> ready_;  // rendered, waiting for their in-flight mark
  limit_plan limits_;                // configured rate limits; none: no Redis work for them
  std::map<std::array<int, 4>, limit_group> groups_;  // by bucket indices (global, channel, tenant, domain)
  std::size_t limited_ = 0;          // messages waiting in groups_
  std::vector<limit_group*> asking_;
  request token_req_;
  std::vector<reply_ptr> token_replies_;
  sys_ms quiet_next_ = sys_ms::max();  // the next quiet-hours change of any campaign
  std::size_t send_window_ = 0;
  std::size_t on_wire_ = 0;          // pushed to the adapter, no outcome yet
  std::size_t marking_ = 0;          // taken from ready_, their marks on the way to Redis
  std::size_t held_ = 0;
  std::size_t records_waiting_ = 0;
  std::map<std::string, std::unique_ptr<campaign_rt>, std::less<>> campaigns_;
  struct tenant_rt {
    int weight = 1;
    int current = 0;
  };
  std::map<std::string, tenant_rt, std::less<>> tenants_;  // a few per engine; never forgotten
  std::vector<campaign_rt*> pick_scratch_;
  std::vector<std::pair<const campaign_rt*, const slot*>> events_;  // counted in the last recording
  std::vector<tenant_rt*> tenant_scratch_;
  std::size_t urgent_reserve_ = 0;
  event pull_wake_, record_wake_, registry_wake_, mark_wake_, limit_wake_, drained_, loops_done_;
  std::string consumer_;
  std::chrono::steady_clock::time_point last_scan_{};
  std::size_t loops_running_ = 0;
  bool stopping_ = false;
  bool pulling_ = true;
  bool loops_stop_ = false;
  bool fatal_ = false;
  bool registry_loaded_ = false;
  bool abandon_records_ = false;
  std::minstd_rand jitter_;
};

shard::shard(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals)
    : impl_(std::make_unique<impl>(cfg, index, until_idle, totals)) {}
shard::~shard() = default;
bool shard::run() { return impl_->run(); }
void shard::request_stop() { impl_->request_stop(); }

}  // namespace budstikke::engine
