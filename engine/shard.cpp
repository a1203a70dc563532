#include "engine/shard.hpp"

#include <algorithm>
#include <random>
#include <vector>

#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "adapters/sms_http/messenger.hpp"
#include "adapters/smtp/messenger.hpp"
#include "engine/campaign.hpp"
#include "engine/clock.hpp"
#include "engine/event.hpp"
#include "engine/limits.hpp"
#include "engine/metrics.hpp"
#include "engine/pipeline.hpp"
#include "engine/quiet_hours.hpp"
#include "engine/renderer.hpp"
#include "engine/scheduler.hpp"
#include "queue/campaign_store.hpp"
#include "queue/consent.hpp"
#include "queue/consumer.hpp"
#include "queue/paths.hpp"
#include "queue/rate_limit.hpp"
#include "support/backoff.hpp"
#include "support/log.hpp"
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

// Due retries moved back into a campaign's stream per mover call: bounds one script's run time.
constexpr std::size_t retry_move_batch = 500;

pipeline_options pipeline_options_from(const config& cfg) {
  pipeline_options o;
  o.window = cfg.engine.window;
  o.send_window = cfg.engine.send_window ? cfg.engine.send_window
                                         : 4 * (cfg.smtp.connections + (cfg.sms.gateway ? cfg.sms.gateway->concurrency : 0));
  o.record_batch = cfg.engine.record_batch;
  o.max_deliveries = cfg.engine.max_deliveries;
  o.sms_default_region = cfg.sms.default_region;
  if (cfg.sms.gateway) o.sms_default_from = cfg.sms.gateway->default_from;
  return o;
}

}  // namespace

// The I/O around the pipeline and the scheduler: one coroutine per role, each with its own Redis
// connection (a connection serves one pipeline at a time), each a thin loop that builds a
// request from what the state machines ask for and hands them the typed answer.
class shard::impl final : public adapters::delivery_listener, pipeline_observer {
 public:
  impl(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals, const clock& clk)
      : cfg_(cfg),
        index_(index),
        until_idle_(until_idle),
        totals_(totals),
        clock_(clk),
        cell_(metrics::global().shard(index)),
        ioc_(1),
        keys_(cfg.key_prefix),
        consumer_(fmt::format("{}-{}", cfg.engine.consumer.empty() ? host_name() : cfg.engine.consumer, index)),
        pull_conn_(ioc_.get_executor(), cfg.redis),
        record_conn_(ioc_.get_executor(), cfg.redis),
        control_conn_(ioc_.get_executor(), cfg.redis),
        mark_conn_(ioc_.get_executor(), cfg.redis),
        limit_conn_(ioc_.get_executor(), cfg.redis),
        limits_(cfg.limits, keys_),
        pipeline_(pipeline_options_from(cfg), limits_, *this),
        scheduler_(scheduler_options{cfg.engine.window, cfg.engine.read_batch, consumer_,
                                     cfg.engine.consumer_timeout / 2, cfg.engine.tenant_weights}),
        pull_wake_(ioc_.get_executor()),
        record_wake_(ioc_.get_executor()),
        housekeeping_wake_(ioc_.get_executor()),
        mark_wake_(ioc_.get_executor()),
        limit_wake_(ioc_.get_executor()),
        drained_(ioc_.get_executor()),
        stop_requested_(ioc_.get_executor()),
        loops_done_(ioc_.get_executor()),
        jitter_(std::random_device{}()) {
    pool_ = adapters::smtp::make_smtp_messenger(ioc_.get_executor(), cfg.smtp, *this);
    if (cfg.sms.gateway) sms_ = adapters::sms_http::make_sms_messenger(ioc_.get_executor(), *cfg.sms.gateway, *this);
  }

  bool run() {
    // [this] is safe in every handler of ioc_: it is our member, run() returns before we are
    // destroyed, and what is still queued then is destroyed with ioc_, never run.
    asio::co_spawn(ioc_, main_loop(), [this](std::exception_ptr e) {
      if (e) fatal(e);
      ioc_.stop();
    });
    ioc_.run();
    return !fatal_;
  }

  void request_stop() {
    asio::post(ioc_, [this] {  // safe: see run()
      stopping_ = true;
      stop_requested_.notify();
    });
  }

 private:
  void fatal(std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log::error("shard stopped by an internal error", {{"shard", index_}, {"error", ex.what()}});
    }
    fatal_ = true;
  }

  // ---- the shard's life ----

  asio::awaitable<void> main_loop() {
    using namespace asio::experimental::awaitable_operators;
    log::info("shard started",
              {{"shard", index_}, {"consumer", consumer_}, {"send_window", pipeline_.send_window()}});
    co_await heartbeat();
    co_await refresh_registry();
    spawn(recorder_loop());
    spawn(mark_loop());
    if (limits_.enabled()) spawn(limit_loop());
    spawn(housekeeping_loop());
    // Reads end when the engine is idle (run --until-idle) or a stop is requested: the stop
    // cancels a read in flight (entries Redis delivered meanwhile stay pending for this consumer
    // and are taken up on the next start).
    if (!stopping_) co_await (pull_loop() || stop_requested_.wait());
    co_await stop();
  }

  // Stop: no more reads. What waits for tokens or a mark is handed back (it stays pending for
  // this consumer); what is on the wire finishes and is recorded, within the shutdown grace
  // when a stop was requested; waiting retries stay in Redis.
  asio::awaitable<void> stop() {
    using namespace asio::experimental::awaitable_operators;
    pulling_ = false;
    cell_.ready.store(false, std::memory_order_relaxed);
    pipeline_.hand_back_waiting();
    wake_loops();
    mark_wake_.notify();
    pool_->close();
    if (sms_) sms_->close();
    if (stopping_) {
      asio::steady_timer grace(ioc_);
      grace.expires_after(cfg_.engine.shutdown_grace);
      while (pipeline_.held() > 0) {
        auto which = co_await (drained_.wait() || grace.async_wait(asio::use_awaitable));
        if (which.index() == 1 && pipeline_.held() > 0) {
          log::warn("shutdown grace over; unrecorded messages stay pending for the next start",
                    {{"shard", index_}, {"held", pipeline_.held()}});
          abandon_records_ = true;
          break;
        }
      }
    } else {
      while (pipeline_.held() > 0) co_await drained_.wait();
    }
    loops_stop_ = true;
    for (event* e : {&record_wake_, &housekeeping_wake_, &mark_wake_, &limit_wake_}) e->notify();
    while (loops_running_ > 0) co_await loops_done_.wait();
    if (pipeline_.held() == 0) {
      co_await pool_->async_wait_closed();
      if (sms_) co_await sms_->async_wait_closed();
      // A clean stop: nothing of ours is pending any more, so nobody needs to wait for our key to expire.
      request bye;
      bye.command("DEL", keys_.consumer_alive(consumer_));
      std::vector<queue::path_report> reports;
      for (const auto& [key, r] : path_reports_) reports.push_back(r);
      queue::append_forget_path_reports(bye, keys_, reports);
      std::vector<reply_ptr> replies;
      co_await control_conn_.async_exec(bye, replies);
    }
    log::info("shard stopped", {{"shard", index_}});
  }

  void spawn(asio::awaitable<void> loop) {
    ++loops_running_;
    asio::co_spawn(ioc_, std::move(loop), [this](std::exception_ptr e) {  // safe: see run()
      if (e) {
        fatal(e);
        ioc_.stop();
      }
      if (--loops_running_ == 0) loops_done_.notify();
    });
  }

  // After anything that changed the pipeline: wakes the loops that now have work.
  void wake_loops() {
    if (pipeline_.wants_marks()) mark_wake_.notify();
    const std::size_t records = pipeline_.records_waiting();
    if (records > 0 && (recorder_idle_ || records >= cfg_.engine.record_batch)) record_wake_.notify();
    if (pipeline_.limited() > 0 && pipeline_.room_for_tokens()) limit_wake_.notify();
    if (pipeline_.free_slots() > free_seen_) pull_wake_.notify();
    free_seen_ = pipeline_.free_slots();
    if (pipeline_.held() == 0) drained_.notify();
    cell_.slots_held.store(static_cast<std::int64_t>(pipeline_.held()), std::memory_order_relaxed);
    cell_.on_wire.store(static_cast<std::int64_t>(pipeline_.on_wire()), std::memory_order_relaxed);
  }

  // Slots that went on the wire: each delivery to its adapter.
  void push_sends() {
    auto& sends = pipeline_.sends();
    for (auto idx : sends) {
      if (pipeline_.at(idx).owner->def.kind == queue::channel::sms) sms_->push(pipeline_.delivery(idx));
      else pool_->push(pipeline_.delivery(idx));
    }
    sends.clear();
  }

  asio::awaitable<void> backoff_wait() {
    asio::steady_timer t(ioc_);
    t.expires_after(support::uniform_delay(std::chrono::milliseconds(100), std::chrono::milliseconds(1000), jitter_()));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  // ---- reading ----

  asio::awaitable<void> pull_loop() {
    for (;;) {
      // Campaigns are forgotten only here, between two reads: a read never admits entries into
      // a campaign the shard no longer has.
      scheduler_.forget_gone();
      auto plan = scheduler_.next(pipeline_.free_slots());
      switch (plan.what) {
        case read_plan::kind::wait_for_slots:
          co_await pull_wake_.wait();
          break;
        case read_plan::kind::recover:
          co_await recover(plan);
          break;
        case read_plan::kind::read:
          co_await read(plan.target, plan.count);
          break;
        case read_plan::kind::block: {
          auto n = co_await read_blocking(plan);
          if (!n || *n > 0 || !until_idle_) break;
          bool done = co_await idle();
          if (done) co_return;
          break;
        }
        case read_plan::kind::idle: {
          if (until_idle_) {
            bool done = co_await idle();
            if (done) co_return;
          }
          co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
          break;
        }
      }
    }
  }

  asio::awaitable<void> read(std::shared_ptr<campaign> c, std::size_t count) {
    pull_req_.clear();
    queue::append_read(pull_req_, consumer_, count, c->stream_key);
    if (auto ec = co_await pull_conn_.async_exec(pull_req_, pull_replies_)) {
      std::vector<std::shared_ptr<campaign>> affected(1, c);  // not a braced list: GCC 12 cannot keep its array across co_await
      co_await read_failed(ec, affected);
      co_return;
    }
    if (auto error = queue::error_of(pull_replies_[0].get())) {
      read_refused(*c, *error);
      co_return;
    }
    scheduler_.read(*c, admit_entries(pull_replies_[0].get()));
  }

  // The entries read, or nullopt when the read failed.
  asio::awaitable<std::optional<std::size_t>> read_blocking(const read_plan& plan) {
    std::vector<std::string_view> streams;
    streams.reserve(plan.streams.size());
    for (const auto& c : plan.streams) streams.push_back(c->stream_key);
    pull_req_.clear();
    queue::append_read_blocking(pull_req_, consumer_, plan.count, cfg_.engine.idle_poll, streams);
    if (auto ec = co_await pull_conn_.async_exec(pull_req_, pull_replies_, cfg_.engine.idle_poll)) {
      co_await read_failed(ec, plan.streams);
      co_return std::nullopt;
    }
    if (auto error = queue::error_of(pull_replies_[0].get())) {
      // A stream or group vanished (campaign deleted by hand): let the registry sort it out.
      log::warn("blocking read refused", {{"shard", index_}, {"reply", *error}});
      housekeeping_wake_.notify();
      co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
      co_return std::nullopt;
    }
    co_return admit_entries(pull_replies_[0].get());
  }

  std::size_t admit_entries(const redisReply* reply) {
    campaign* c = nullptr;
    const auto now = clock_.now();
    std::size_t n = queue::for_each_entry(reply, [&](std::string_view stream, const queue::stream_entry& e) {
      if (c == nullptr || c->stream_key != stream) c = scheduler_.by_stream(stream);
      if (c == nullptr) return;  // cannot happen: we only read streams we know
      scheduler_.entries_arrived(*c);
      pipeline_.admit(*c, e, nullptr, now);
    });
    after_pipeline_change();
    return n;
  }

  // Takes over up to plan.count pending entries of plan.consumer (crash recovery).
  asio::awaitable<void> recover(const read_plan& plan) {
    campaign& c = *plan.target;
    const bool own = plan.consumer == consumer_;
    pull_req_.clear();
    queue::append_pending_of(pull_req_, c.stream_key, plan.consumer, plan.min_idle, plan.cursor, plan.count);
    if (auto ec = co_await pull_conn_.async_exec(pull_req_, pull_replies_)) {
      log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return;
    }
    auto pending = queue::parse_pending_of(pull_replies_[0].get());
    if (!pending) {
      read_refused(c, queue::error_of(pull_replies_[0].get()).value_or(""));
      co_return;
    }
    if (pending->empty()) {
      scheduler_.recovered_all(c);
      co_return;
    }
    pull_req_.clear();
    queue::append_claim(pull_req_, c.stream_key, c.inflight_key, consumer_, plan.min_idle, *pending);
    if (auto ec = co_await pull_conn_.async_exec(pull_req_, pull_replies_)) {
      log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return;
    }
    scheduler_.recovered_up_to(c, pending->back().id);
    const auto marks = queue::parse_marks(pull_replies_[1].get(), pending->size());
    const auto now = clock_.now();
    std::size_t claimed = queue::for_each_entry_in(pull_replies_[0].get(), [&](const queue::stream_entry& e) {
      recovery_info info{1, false, plan.consumer};
      for (std::size_t i = 0; i < pending->size(); ++i) {
        if ((*pending)[i].id != e.id) continue;
        info.deliveries = (*pending)[i].deliveries;
        info.was_on_wire = marks[i];
        break;
      }
      pipeline_.admit(c, e, &info, now);
    });
    after_pipeline_change();
    if (claimed > 0)
      log::info("took over pending entries",
                {{"shard", index_}, {"campaign", c.def.id}, {"from", plan.consumer}, {"entries", claimed}});
    if (own && claimed < pending->size())
      log::warn("pending entries no longer in the stream (deleted by hand?)",
                {{"shard", index_}, {"campaign", c.def.id}, {"entries", pending->size() - claimed}});
  }

  // True when no campaign has work left: nothing held here, no backlog to take over, and no
  // entry pending with any consumer (another shard, or a dead one whose entries await reclaiming).
  asio::awaitable<bool> idle() {
    const campaign* blocked = nullptr;  // served, and waiting for its suspended relay or gateway
    for (auto& [id, c] : scheduler_.campaigns())
      if (c->path_down && c->served()) blocked = c.get();
    if (!blocked) path_wait_since_ = {};
    if (!registry_loaded_ || pipeline_.held() > 0) co_return false;
    if (blocked) {
      waiting_for_path(*blocked);
      co_return false;
    }
    request req;
    for (auto& [id, c] : scheduler_.campaigns()) {
      if (c->quiet && c->active) co_return false;  // its recipients wait for the end of quiet hours
      if (!c->served()) continue;
      if (c->recovering()) co_return false;
      queue::append_work_left(req, keys_, id);
    }
    if (req.empty()) co_return true;
    std::vector<reply_ptr> replies;
    if (co_await pull_conn_.async_exec(req, replies)) co_return false;
    bool pending_elsewhere = false, work_left = false;
    for (const auto& r : replies) {
      auto left = queue::parse_work_left(r.get());
      if (!left) {  // not known: never idle on a guess
        log::warn("cannot tell what work is left; asking again",
                  {{"shard", index_}, {"reply", queue::error_of(r.get()).value_or("")}});
        co_return false;
      }
      pending_elsewhere = pending_elsewhere || left->pending > 0;
      work_left = work_left || left->any();
    }
    if (pending_elsewhere) co_await find_dead_consumers(pull_conn_);
    co_return !work_left;
  }

  asio::awaitable<void> read_failed(std::error_code ec, const std::vector<std::shared_ptr<campaign>>& affected) {
    scheduler_.read_failed(affected);
    cell_.ready.store(false, std::memory_order_relaxed);
    log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
    co_await backoff_wait();
  }

  // run --until-idle waits while a suspended path has work: it says why once a minute, and
  // with --max-wait (engine.max_path_wait) gives up after that long: the shard stops as on
  // SIGTERM, the work stays pending, and `run` exits 3.
  void waiting_for_path(const campaign& c) {
    const auto now = clock_.now();
    if (path_wait_since_ == steady_time{}) path_wait_since_ = now;
    const auto& why = path_reason_[static_cast<std::size_t>(c.def.kind)];
    if (cfg_.engine.max_path_wait.count() > 0 && now - path_wait_since_ >= cfg_.engine.max_path_wait) {
      if (!stopping_) {
        log::error("gave up waiting for a suspended relay or gateway (--max-wait); the work stays pending",
                   {{"shard", index_}, {"campaign", c.def.id}, {"path", why}});
        totals_.gave_up_waiting = true;
        request_stop();
      }
      return;
    }
    if (index_ != 0 || (path_waiting_logged_ != steady_time{} && now - path_waiting_logged_ < std::chrono::minutes(1)))
      return;
    path_waiting_logged_ = now;
    log::warn("waiting: the campaign's relay or gateway is suspended", {{"campaign", c.def.id}, {"path", why}});
  }

  void read_refused(campaign& c, std::string_view reply) {
    log::error("Redis refused to read the campaign's stream; the campaign is not served",
               {{"shard", index_}, {"campaign", c.def.id}, {"reply", reply}});
    scheduler_.read_refused(c);
  }

  void after_pipeline_change() {
    push_sends();
    wake_loops();
  }

  // ---- in-flight marks and the consent check ----

  // Writes the in-flight marks of ready messages (one round trip per batch) with their consent
  // and suppression lookups, then sends them. At most the send window is marked and unanswered
  // at once: that, not the read-ahead, bounds how many can be ambiguous after a crash.
  asio::awaitable<void> mark_loop() {
    request req;
    std::vector<reply_ptr> replies;
    while (!loops_stop_) {
      if (!pulling_ || !pipeline_.wants_marks()) {
        co_await mark_wake_.wait();
        continue;
      }
      const auto& batch = pipeline_.take_mark_batch();
      // One round trip: consent and suppression as they are now (a withdrawal written a moment
      // ago counts), and the in-flight marks, one HSET per campaign. A message that must be
      // skipped was marked for nothing; recording it clears the mark.
      req.clear();
      const auto now_ms = clock_.wall_ms();
      for (std::size_t i = 0; i < batch.size();) {
        const campaign& c = *pipeline_.at(batch[i]).owner;
        std::size_t end = i;
        while (end < batch.size() && pipeline_.at(batch[end]).owner == &c) ++end;
        for (std::size_t k = i; k < end; ++k) {
          const slot& s = pipeline_.at(batch[k]);
          queue::append_consent_lookup(req, keys_, c.def.kind, c.def.category, s.member, s.d.envelope_to,
                                       c.policy->check_consent);
        }
        req.begin(2 + 2 * (end - i)).arg("HSET").arg(c.inflight_key);
        for (std::size_t k = i; k < end; ++k) req.arg(pipeline_.at(batch[k]).entry_id).arg(now_ms);
        i = end;
      }
      auto ec = co_await mark_conn_.async_exec(req, replies);
      bool refused = false;
      if (!ec) {
        std::size_t r = 0;
        for (std::size_t i = 0; i < batch.size(); ++i) {
          const campaign& c = *pipeline_.at(batch[i]).owner;
          r += c.policy->check_consent ? 2 : 1;
          if (i + 1 == batch.size() || pipeline_.at(batch[i + 1]).owner != &c)
            refused = refused || queue::error_of(replies[r++].get()).has_value();  // the campaign's HSET
        }
      }
      const auto now = clock_.now();
      if (ec || refused) {
        log::warn("cannot mark messages in flight; retrying",
                  {{"shard", index_}, {"error", ec ? ec.message() : std::string("refused")}});
        pipeline_.marks_failed(!pulling_);
        pipeline_.batch_done();
        after_pipeline_change();
        if (pulling_) co_await backoff_wait();
        continue;
      }
      std::size_t r = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        const std::uint32_t idx = batch[i];
        const campaign& c = *pipeline_.at(idx).owner;
        const redisReply* consent = c.policy->check_consent ? replies[r++].get() : nullptr;
        const redisReply* suppressed = replies[r++].get();
        auto problem = queue::lookup_problem(consent, suppressed, c.policy->consent_required,
                                             !pipeline_.at(idx).member.empty());
        const bool last_of_campaign = i + 1 == batch.size() || pipeline_.at(batch[i + 1]).owner != &c;
        pipeline_.marked(idx, problem, !pulling_, now);
        if (last_of_campaign) ++r;  // the HSET
      }
      pipeline_.batch_done();
      after_pipeline_change();
    }
  }

  // ---- rate limits ----

  // Beside the mark loop, on its own connection, so that taking tokens for the next batch
  // overlaps marking this one.
  asio::awaitable<void> limit_loop() {
    request req;
    std::vector<reply_ptr> replies;
    while (!loops_stop_) {
      if (pipeline_.limited() > 0 && pulling_) {
        // Only this loop asks for tokens: `asking` stays as it is across the round trip.
        const auto& asking = pipeline_.token_asks(clock_.now());
        if (!asking.empty()) {
          req.clear();
          for (const auto& a : asking) queue::append_take_tokens(req, a.group->buckets, a.wanted);
          if (auto ec = co_await limit_conn_.async_exec(req, replies)) {
            log::warn("cannot take rate-limit tokens; retrying", {{"shard", index_}, {"error", ec.message()}});
            co_await backoff_wait();
            continue;
          }
          const auto after = clock_.now();
          for (std::size_t i = 0; i < asking.size(); ++i) {
            auto grant = queue::parse_token_grant(replies[i].get());
            if (!grant) {
              log::warn("rate-limit script refused; retrying",
                        {{"shard", index_}, {"reply", queue::error_of(replies[i].get()).value_or("")}});
              pipeline_.tokens_refused(*asking[i].group, after);
              continue;
            }
            pipeline_.tokens_granted(*asking[i].group, *grant, after);
          }
          after_pipeline_change();
          continue;
        }
      }
      co_await limit_wake_.wait_for(pipeline_.until_tokens(clock_.now()));
    }
  }

  // ---- answers from the adapters ----

  void on_delivered(adapters::delivery& d) override {
    pipeline_.answered(d, jitter_(), clock_.now(), clock_.wall_ms());
    after_pipeline_change();
  }

  // A relay or the gateway was suspended or is usable again. While no path of a channel is
  // usable, its campaigns are not read (what is held comes back unsent); `run --until-idle`
  // keeps waiting for them.
  void on_path_state(const adapters::path_event& e) override {
    metrics::global().path_state(index_, e.kind, e.name, e.usable);
    note_path_report(e);
    const auto ch = e.kind == "sms" ? queue::channel::sms : queue::channel::email;
    auto& down = path_down_[static_cast<std::size_t>(ch)];
    if (!e.usable) path_reason_[static_cast<std::size_t>(ch)] = fmt::format("{}: {}", e.name, e.reason);
    if (down == !e.any_usable) return;
    down = !e.any_usable;
    for (auto& [id, c] : scheduler_.campaigns())
      if (c->def.kind == ch) c->path_down = down;
    if (down) path_waiting_logged_ = {};
    pull_wake_.notify();
  }

  // What `status` shows of the path: written to Redis by the housekeeping loop, taken away
  // when the shard stops cleanly.
  void note_path_report(const adapters::path_event& e) {
    const auto wall = clock_.wall_ms();
    const auto steady = clock_.now();
    auto& r = path_reports_[fmt::format("{}\t{}", e.kind, e.name)];
    r.kind = e.kind;
    r.path = e.name;
    r.consumer = consumer_;
    r.usable = e.usable;
    r.reason = e.usable ? std::string_view{} : e.reason;
    r.since_ms = e.usable ? 0 : wall - std::chrono::duration_cast<std::chrono::milliseconds>(steady - e.since).count();
    r.next_probe_ms = e.usable ? 0 : wall + e.next_probe.count();
    r.at_ms = wall;
    path_reports_dirty_ = true;
    housekeeping_wake_.notify();
  }

  asio::awaitable<void> write_path_reports() {
    path_reports_dirty_ = false;
    request req;
    for (const auto& [key, r] : path_reports_) queue::append_path_report(req, keys_, r);
    std::vector<reply_ptr> replies;
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      path_reports_dirty_ = true;  // the next round tries again
      log::warn("cannot write the paths' state", {{"shard", index_}, {"error", ec.message()}});
    }
  }

  // ---- recording ----

  asio::awaitable<void> recorder_loop() {
    request req;
    std::vector<reply_ptr> replies;
    std::vector<queue::outcome_record> records;
    while (true) {
      if (pipeline_.records_waiting() == 0) {
        if (loops_stop_) break;
        recorder_idle_ = true;
        co_await record_wake_.wait();
        recorder_idle_ = false;
        continue;
      }
      if (pipeline_.records_waiting() < cfg_.engine.record_batch && !loops_stop_)
        co_await record_wake_.wait_for(cfg_.engine.record_interval);

      req.clear();
      const auto now = support::rfc3339(clock_.wall());
      auto& batches = pipeline_.take_records();
      for (auto& b : batches) {
        records.clear();
        for (auto idx : b.slots) {
          const slot& s = pipeline_.at(idx);
          std::optional<final_state> state;
          if (s.kind == record_kind::final) state = s.outcome;
          std::optional<std::int64_t> retry;
          if (s.kind == record_kind::retry) retry = s.retry_in_ms;
          records.push_back({s.entry_id, state, s.member, s.reason, s.resent, s.attempts, s.reply, retry,
                             s.paused_retries, s.deferred_since_ms});
        }
        queue::append_record_outcomes(req, keys_, b.owner->def.id, now, records);
      }
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
        for (auto& b : batches) pipeline_.abandon(b);
        after_pipeline_change();
        continue;
      }
      request control;
      events_.clear();
      for (std::size_t i = 0; i < batches.size(); ++i) {
        auto& b = batches[i];
        auto result = queue::parse_record_result(replies[i].get(), b.slots.size());
        if (!result) {
          log::error("recording refused; entries stay pending",
                     {{"shard", index_}, {"campaign", b.owner->def.id},
                      {"reply", queue::error_of(replies[i].get()).value_or("unexpected reply")}});
          pipeline_.abandon(b);
          continue;
        }
        pipeline_.recorded(b, *result);  // counted() below collects the events
        if (result->finished) {
          ++totals_.campaigns_finished;
          log::info("campaign finished", {{"campaign", b.owner->def.id}, {"shard", index_}});
          control.command("ZREM", keys_.registry(), b.owner->def.id);
        }
      }
      append_events(control, now);
      after_pipeline_change();
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
    for (auto [c, idx] : events_) {
      const slot& s = pipeline_.at(idx);
      std::string_view state = s.kind == record_kind::final ? queue::to_string(s.outcome) : std::string_view("retrying");
      queue::append_event(req, c->def.id, s.entry_id, s.member, c->def.kind, state, s.reason, s.reply, s.attempts);
    }
  }

  // ---- what the pipeline reports ----

  void admitted(const campaign& c, const slot& s, bool recovered) override {
    if (!recovered) metrics::global().observe_queue_lag(c.def.kind, seconds_since_entry(s.entry_id));
  }

  void waited_for_tokens(metrics::limiter held_by, std::chrono::steady_clock::duration waited) override {
    metrics::global().observe_rate_limiter_wait(held_by, std::chrono::duration<double>(waited).count());
  }

  void answered(const campaign& c, const slot& s, std::chrono::steady_clock::duration roundtrip) override {
    auto& m = metrics::global();
    m.adapter_result(c.def.kind, s.d.result);
    m.observe_relay_roundtrip(c.def.kind, std::chrono::duration<double>(roundtrip).count());
    if (s.d.result == adapters::outcome::accepted) m.observe_enqueue_to_accepted(c.def.kind, seconds_since_entry(s.entry_id));
  }

  void counted(const campaign& c, const slot& s) override {
    if (s.kind == record_kind::final) {
      switch (s.outcome) {
        case final_state::sent: ++totals_.sent; break;
        case final_state::failed: ++totals_.failed; break;
        case final_state::skipped: ++totals_.skipped; break;
        case final_state::ambiguous: ++totals_.ambiguous; break;
      }
      c.series->record(s.outcome);
    } else {
      ++totals_.retries;
    }
    if (cfg_.engine.events_max_len > 0) events_.emplace_back(&c, s.d.slot);
  }

  void handed_back(const slot&) override { ++totals_.handed_back; }

  // Seconds since the entry was added (its id is "<ms>-<seq>", in Redis's clock).
  double seconds_since_entry(std::string_view entry_id) const {
    auto ms = metrics::entry_time_ms(entry_id);
    return ms ? static_cast<double>(clock_.wall_ms() - *ms) / 1000.0 : 0.0;
  }

  // ---- liveness, the registry, dead consumers, due retries, quiet hours ----

  asio::awaitable<void> heartbeat() {
    request req;
    queue::append_heartbeat(req, keys_, consumer_, clock_.wall_ms(), cfg_.engine.consumer_timeout);
    std::vector<reply_ptr> replies;
    if (auto ec = co_await control_conn_.async_exec(req, replies))
      log::warn("cannot refresh the liveness key", {{"shard", index_}, {"error", ec.message()}});
  }

  // The next quiet-hours change on the steady clock the loops wait with.
  steady_time quiet_deadline() const {
    if (quiet_next_ == sys_ms::max()) return steady_time::max();
    auto left = quiet_next_ - clock_.wall();
    return clock_.now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::max<std::chrono::milliseconds>(left, std::chrono::milliseconds(0)));
  }

  asio::awaitable<void> housekeeping_loop() {
    auto now = clock_.now();
    auto next_registry = now + cfg_.engine.registry_interval;
    auto next_heartbeat = now + cfg_.engine.heartbeat_interval;
    auto next_scan = now + cfg_.engine.consumer_timeout / 2;
    auto next_move = now + cfg_.engine.retry_poll;
    while (!loops_stop_) {
      auto next = std::min({next_registry, next_heartbeat, next_scan, next_move, quiet_deadline()});
      co_await housekeeping_wake_.wait_for(next - clock_.now());
      if (loops_stop_) break;
      now = clock_.now();
      if (now >= quiet_deadline()) update_quiet();
      if (path_reports_dirty_) co_await write_path_reports();
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
        next_move = clock_.now() + cfg_.engine.retry_poll;
      }
    }
  }

  // Due retries of the served campaigns go back into their streams, one pipeline for all. Each
  // move is one atomic script, so shards (of any process) doing it at once cannot move one twice.
  asio::awaitable<void> move_due_retries() {
    request req;
    std::vector<std::shared_ptr<campaign>> moved_for;  // kept across the round trip
    for (auto& [id, c] : scheduler_.campaigns()) {
      if (!c->served()) continue;
      queue::append_move_due_retries(req, keys_, id, retry_move_batch);
      moved_for.push_back(c);
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
      auto moved = queue::parse_moved_retries(replies[i].get());
      if (!moved) {
        log::warn("moving due retries refused", {{"shard", index_}, {"campaign", moved_for[i]->def.id},
                                                 {"reply", queue::error_of(replies[i].get()).value_or("")}});
        continue;
      }
      if (moved->malformed > 0)
        log::warn("unusable members of the retry set: each is recorded failed with the reason",
                  {{"shard", index_}, {"campaign", moved_for[i]->def.id}, {"members", moved->malformed}});
      if (moved->moved + moved->malformed > 0) {
        scheduler_.entries_arrived(*moved_for[i]);
        pull_wake_.notify();
      }
      waiting += moved->waiting;
    }
    // Every shard serves every campaign, so one per process reports the total.
    if (index_ == 0) metrics::global().set_retry_set_size(waiting);
  }

  // Consumers with pending entries whose liveness key has expired are dead: their entries are
  // taken over (queued in the campaign's recover list). `conn` is the calling coroutine's own
  // connection (a connection serves one pipeline at a time).
  asio::awaitable<void> find_dead_consumers(queue::connection& conn) {
    const auto now = clock_.now();
    if (now - last_scan_ < std::chrono::seconds(1)) co_return;
    last_scan_ = now;
    request req;
    std::vector<std::shared_ptr<campaign>> scanned;  // kept across the round trips
    for (auto& [id, c] : scheduler_.campaigns()) {
      if (!c->served()) continue;
      queue::append_consumers(req, c->stream_key);
      scanned.push_back(c);
    }
    if (req.empty()) co_return;
    std::vector<reply_ptr> replies;
    if (co_await conn.async_exec(req, replies)) co_return;
    std::vector<std::pair<std::shared_ptr<campaign>, std::string>> candidates;
    for (std::size_t i = 0; i < scanned.size(); ++i)
      for (auto& info : queue::parse_consumers(replies[i].get()))
        if (info.pending > 0 && info.name != consumer_) candidates.emplace_back(scanned[i], std::move(info.name));
    if (candidates.empty()) co_return;
    req.clear();
    for (auto& [c, name] : candidates) queue::append_consumer_alive(req, keys_, name);
    if (co_await conn.async_exec(req, replies)) co_return;
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      if (queue::parse_alive(replies[i].get())) continue;
      auto& [c, name] = candidates[i];
      // The campaign may have been forgotten while we asked: only campaigns still known.
      if (scheduler_.find(c->def.id) != c.get()) continue;
      if (!scheduler_.dead_consumer(*c, name)) continue;
      log::warn("consumer is dead; taking over its pending entries",
                {{"shard", index_}, {"campaign", c->def.id}, {"consumer", name}});
      pull_wake_.notify();
    }
  }

  asio::awaitable<void> refresh_registry() {
    request req;
    std::vector<reply_ptr> replies;
    queue::append_registry(req, keys_);
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read the campaign registry", {{"shard", index_}, {"error", ec.message()}});
      cell_.ready.store(false, std::memory_order_relaxed);
      co_await backoff_wait();
      co_return;
    }
    auto ids = queue::parse_ids(replies[0].get());
    if (!ids) {
      log::warn("cannot read the campaign registry",
                {{"shard", index_}, {"reply", queue::error_of(replies[0].get()).value_or("unexpected reply")}});
      co_return;
    }
    // An id that enqueue would refuse (a buggy or hostile writer of the registry) must not end up
    // in key names or hash tags: it is skipped, said once, and the other campaigns go on.
    const auto bad = std::stable_partition(ids->begin(), ids->end(), [](const std::string& id) {
      return queue::valid_campaign_id(id);
    });
    const auto bad_count = static_cast<std::size_t>(ids->end() - bad);
    if (bad_count != bad_ids_logged_ && index_ == 0 && bad_count > 0)
      log::warn("the campaign registry holds ids that are not valid campaign ids; they are not served",
                {{"ids", bad_count}, {"first", std::string_view(*bad).substr(0, queue::max_id_length)}});
    bad_ids_logged_ = bad_count;
    ids->erase(bad, ids->end());
    for (auto& [id, c] : scheduler_.campaigns()) c->in_registry = false;
    req.clear();
    std::vector<bool> fresh;  // per id: not known yet, so its whole hash is read
    for (auto& id : *ids) {
      campaign* c = scheduler_.find(id);
      fresh.push_back(c == nullptr);
      if (c == nullptr) {
        queue::append_campaign(req, keys_, id);
      } else {
        c->in_registry = true;
        queue::append_campaign_state(req, keys_, id);
      }
    }
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read campaigns", {{"shard", index_}, {"error", ec.message()}});
      co_return;
    }
    // The replies come in the registry's order, fresh and known campaigns interleaved.
    request control;
    for (std::size_t i = 0; i < ids->size(); ++i) {
      const std::string& id = (*ids)[i];
      if (fresh[i]) {
        add_campaign(id, replies[i].get());
        continue;
      }
      campaign& c = *scheduler_.find(id);
      auto state = queue::parse_state(replies[i].get());
      switch (scheduler_.apply_state(c, state)) {
        case scheduler::state_change::resumed:
          pull_wake_.notify();
          break;
        case scheduler::state_change::paused:
          // Paused or cancelled: what is read but not yet on the wire goes back (it stays pending
          // for this consumer); what is on the wire finishes. On resume the own backlog is taken
          // up again, so pause + resume sends every recipient exactly once.
          pipeline_.hold_back(c);
          after_pipeline_change();
          log::info("campaign paused or cancelled: not sending more", {{"shard", index_}, {"campaign", c.def.id}});
          break;
        case scheduler::state_change::none:
          break;
      }
      // Done, or cancelled with nothing of ours left in flight: the registry no longer needs it.
      if (state == "done" || (state == "cancelled" && c.held == 0)) control.command("ZREM", keys_.registry(), id);
    }
    update_quiet();
    if (!control.empty()) co_await control_conn_.async_exec(control, replies);
    registry_loaded_ = true;
    cell_.ready.store(true, std::memory_order_relaxed);
    // Campaigns that left the registry are forgotten by the pull loop once nothing of theirs is
    // in flight (in_registry is false now).
    pull_wake_.notify();
  }

  void add_campaign(const std::string& id, const redisReply* hash) {
    auto c = std::make_shared<campaign>();
    c->def.id = id;
    c->stream_key = keys_.recipients(id);
    c->inflight_key = keys_.inflight(id);
    auto def = queue::parse_campaign(hash, id);
    if (!def) {
      c->mode = serve_mode::fail_all;
      c->unusable_reason = "campaign definition unusable: " + def.error().message;
    } else {
      c->def = std::move(*def);
      c->active = c->def.state == "active";
      if (c->def.kind != queue::channel::email && !(c->def.kind == queue::channel::sms && sms_)) {
        c->mode = serve_mode::not_served;
        if (index_ == 0)
          log::warn("no adapter for the campaign's channel in this engine; not served",
                    {{"campaign", id}, {"channel", queue::to_string(c->def.kind)}});
      } else {
        if (auto renderer = campaign_renderer::compile(c->def, cfg_)) {
          c->renderer = std::move(*renderer);
        } else {
          c->mode = serve_mode::fail_all;
          c->unusable_reason = "campaign templates unusable: " + renderer.error().message;
        }
      }
    }
    c->policy = &cfg_.policy(c->def.category);
    c->retry = retry_policy_for(cfg_.engine, *c->policy);
    c->path_down = path_down_[static_cast<std::size_t>(c->def.kind)];
    if (c->mode == serve_mode::fail_all && index_ == 0)
      log::error("campaign cannot be sent; each recipient is recorded failed",
                 {{"campaign", id}, {"error", c->unusable_reason}});
    else if (c->mode == serve_mode::send && index_ == 0)
      log::info("serving campaign", {{"campaign", id}, {"priority", c->def.priority}});
    c->series = metrics::global().campaign(id, c->def.tenant, c->def.kind);
    c->tenant_bucket = limits_.tenant(c->def.tenant);
    campaign& added = scheduler_.add(std::move(c));
    if (added.mode == serve_mode::send) evaluate_quiet(added, clock_.wall());
    pull_wake_.notify();
  }

  // Entering quiet hours is like a pause (what is read but not on the wire goes back); leaving
  // them lets the campaign be read again.
  void evaluate_quiet(campaign& c, sys_ms now) {
    switch (scheduler_.evaluate_quiet(c, cfg_.quiet_hours, now)) {
      case scheduler::quiet_change::entered:
        pipeline_.hold_back(c);
        after_pipeline_change();
        if (index_ == 0)
          log::info("campaign waits for quiet hours",
                    {{"campaign", c.def.id}, {"channel", queue::to_string(c.def.kind)}, {"category", c.def.category},
                     {"until", support::rfc3339(c.quiet_change)}});
        break;
      case scheduler::quiet_change::left:
        pull_wake_.notify();
        if (index_ == 0) log::info("quiet hours over: sending the campaign", {{"campaign", c.def.id}});
        break;
      case scheduler::quiet_change::none:
        break;
    }
  }

  // Every campaign's quiet hours, and the earliest moment one of them changes.
  void update_quiet() {
    quiet_next_ = sys_ms::max();
    if (cfg_.quiet_hours.empty()) return;
    const auto now = clock_.wall();
    for (auto& [id, c] : scheduler_.campaigns()) {
      if (c->mode != serve_mode::send) continue;
      evaluate_quiet(*c, now);
      quiet_next_ = std::min(quiet_next_, c->quiet_change);
    }
  }

  const config& cfg_;
  std::size_t index_;
  bool until_idle_;
  engine_totals& totals_;
  const clock& clock_;
  metrics::shard_cell& cell_;
  asio::io_context ioc_;
  queue::keys keys_;
  std::string consumer_;
  queue::connection pull_conn_, record_conn_, control_conn_, mark_conn_;
  queue::connection limit_conn_;  // rate-limit tokens (used only when limits are configured)
  limit_plan limits_;             // configured rate limits; none: no Redis work for them
  pipeline pipeline_;
  scheduler scheduler_;
  std::unique_ptr<adapters::smtp::smtp_messenger> pool_;
  std::unique_ptr<adapters::sms_http::sms_messenger> sms_;  // when sms.gateway is configured
  request pull_req_;
  std::vector<reply_ptr> pull_replies_;
  std::vector<std::pair<const campaign*, std::uint32_t>> events_;  // counted in the last recording
  sys_ms quiet_next_ = sys_ms::max();  // the next quiet-hours change of any campaign
  event pull_wake_, record_wake_, housekeeping_wake_, mark_wake_, limit_wake_, drained_, stop_requested_, loops_done_;
  steady_time last_scan_{};
  std::array<bool, metrics::channel_count> path_down_{};         // by channel: no path usable
  std::array<std::string, metrics::channel_count> path_reason_;  // the last suspension's path and reason
  steady_time path_waiting_logged_{};
  steady_time path_wait_since_{};  // until_idle: since when only a suspended path keeps us busy
  std::map<std::string, queue::path_report, std::less<>> path_reports_;  // by kind and path
  bool path_reports_dirty_ = false;
  std::size_t loops_running_ = 0;
  std::size_t free_seen_ = 0;
  bool stopping_ = false;
  bool pulling_ = true;
  bool loops_stop_ = false;
  bool fatal_ = false;
  bool registry_loaded_ = false;
  std::size_t bad_ids_logged_ = 0;  // invalid ids in the registry when it was last read
  bool abandon_records_ = false;
  bool recorder_idle_ = false;
  std::mt19937_64 jitter_;  // 64 bits: retry delays draw from ranges of hours
};

shard::shard(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals)
    : impl_(std::make_unique<impl>(cfg, index, until_idle, totals, clock::system())) {}
shard::~shard() = default;
bool shard::run() { return impl_->run(); }
void shard::request_stop() { impl_->request_stop(); }

}  // namespace budstikke::engine
