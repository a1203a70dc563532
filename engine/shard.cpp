#include "engine/shard.hpp"

#include <map>
#include <random>
#include <vector>

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "adapters/smtp/pool.hpp"
#include "engine/event.hpp"
#include "engine/log.hpp"
#include "engine/renderer.hpp"
#include "queue/campaign_store.hpp"
#include "templates/address.hpp"

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

}  // namespace

class shard::impl final : public adapters::delivery_listener {
 public:
  impl(const config& cfg, std::size_t index, bool until_idle, engine_totals& totals)
      : cfg_(cfg),
        index_(index),
        until_idle_(until_idle),
        totals_(totals),
        ioc_(1),
        keys_(cfg.key_prefix),
        pull_conn_(ioc_.get_executor(), cfg.redis),
        record_conn_(ioc_.get_executor(), cfg.redis),
        control_conn_(ioc_.get_executor(), cfg.redis),
        pull_wake_(ioc_.get_executor()),
        record_wake_(ioc_.get_executor()),
        registry_wake_(ioc_.get_executor()),
        drained_(ioc_.get_executor()),
        recorder_done_(ioc_.get_executor()),
        jitter_(std::random_device{}()) {
    consumer_ = fmt::format("{}-{}", cfg.engine.consumer.empty() ? host_name() : cfg.engine.consumer, index);
    slots_.reserve(cfg.engine.window);
    free_.reserve(cfg.engine.window);
    for (std::size_t i = 0; i < cfg.engine.window; ++i) {
      slots_.push_back(std::make_unique<slot>(ioc_.get_executor()));
      slots_.back()->d.slot = static_cast<std::uint32_t>(i);
      free_.push_back(static_cast<std::uint32_t>(cfg.engine.window - 1 - i));
    }
    pool_ = std::make_unique<adapters::smtp::pool>(ioc_.get_executor(), cfg.smtp, *this);
  }

  bool run() {
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
    asio::post(ioc_, [this] {
      if (stopping_) return;
      stopping_ = true;
      pull_wake_.notify();
      registry_wake_.notify();
    });
  }

 private:
  struct campaign_rt {
    queue::campaign_definition def;
    std::string stream_key;
    std::unique_ptr<campaign_renderer> renderer;
    bool usable = true;      // false: its templates do not compile, or no adapter for its channel
    bool active = true;      // state == active
    bool in_registry = true;
    bool backlog_done = false;  // this consumer's own pending entries (a previous run's) re-read
    bool backlog_after_drain = false;  // a read failed mid-way: re-read the backlog once idle
    std::string backlog_cursor = "0";
    bool exhausted = false;  // the last read for new entries found none
    int weight = 1;
    int current = 0;         // smooth weighted round-robin state
    std::size_t held = 0;    // slots holding this campaign's entries
    std::vector<std::uint32_t> to_record;
  };

  struct slot {
    explicit slot(asio::any_io_executor ex) : retry_timer(ex) {}
    adapters::delivery d;
    campaign_rt* campaign = nullptr;
    std::string entry_id;
    std::string member;
    std::string reason;
    final_state state = final_state::failed;
    std::uint32_t attempts = 0;
    asio::steady_timer retry_timer;
  };

  asio::awaitable<void> main_loop() {
    log::info("shard started", {{"shard", index_}, {"consumer", consumer_}});
    co_await refresh_registry();
    asio::co_spawn(ioc_, recorder_loop(), asio::detached);
    asio::co_spawn(ioc_, registry_loop(), asio::detached);
    co_await pull_loop();

    // Stop: no more reads. Retries waiting for their timer are handed back unrecorded (they stay
    // in this consumer's pending list and are read again on the next start).
    pulling_ = false;
    for (auto& s : slots_) s->retry_timer.cancel();
    pool_->close();
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
    recorder_stop_ = true;
    record_wake_.notify();
    registry_wake_.notify();
    while (recorder_running_) co_await recorder_done_.wait_for(std::chrono::milliseconds(100));
    if (held_ == 0) co_await pool_->async_wait_closed();
    log::info("shard stopped", {{"shard", index_}});
  }

  // ---- pulling ----

  asio::awaitable<void> pull_loop() {
    std::vector<reply_ptr> replies;
    request req;
    const std::size_t want = std::min(cfg_.engine.read_batch, cfg_.engine.window);
    while (!stopping_) {
      if (free_.size() < want) {
        co_await pull_wake_.wait_for(std::chrono::seconds(1));
        continue;
      }
      if (campaign_rt* c = pick()) {
        bool backlog = !c->backlog_done;
        req.clear();
        req.command("XREADGROUP", "GROUP", queue::consumer_group, consumer_, "COUNT", free_.size() < want ? free_.size() : want,
                    "STREAMS", c->stream_key, backlog ? std::string_view(c->backlog_cursor) : std::string_view(">"));
        if (auto ec = co_await pull_conn_.async_exec(req, replies)) {
          std::vector<campaign_rt*> affected(1, c);  // not a braced list: GCC 12 cannot keep its array across co_await
          co_await read_failed(ec, affected);
          continue;
        }
        if (queue::is_error(replies[0].get())) {
          co_await read_refused(replies[0].get(), c);
          continue;
        }
        std::size_t n = take_entries(replies[0].get(), backlog);
        if (n == 0) (backlog ? c->backlog_done : c->exhausted) = true;
        continue;
      }

      // Nothing to read without waiting: block on every campaign's stream for new entries.
      std::vector<campaign_rt*> readable;
      for (auto& [id, c] : campaigns_)
        if (c->usable && c->active && c->backlog_done && !c->backlog_after_drain) readable.push_back(c.get());
      if (readable.empty() || free_.size() < readable.size()) {
        if (until_idle_ && idle()) break;
        co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
        continue;
      }
      req.clear();
      // XREADGROUP GROUP g c COUNT n BLOCK ms STREAMS k1..kn >..>
      req.begin(9 + 2 * readable.size())
          .arg("XREADGROUP").arg("GROUP").arg(queue::consumer_group).arg(consumer_)
          .arg("COUNT").arg(std::max<std::size_t>(1, std::min(want, free_.size() / readable.size())))
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
        co_await refresh_registry();
        co_await pull_wake_.wait_for(cfg_.engine.idle_poll);
        continue;
      }
      std::size_t n = take_entries(replies[0].get(), false);
      if (n == 0 && until_idle_ && idle()) break;
    }
  }

  // Smooth weighted round-robin over the campaigns that can be read without blocking.
  campaign_rt* pick() {
    campaign_rt* best = nullptr;
    int total = 0;
    for (auto& [id, c] : campaigns_) {
      if (!c->usable || !c->active) continue;
      if (c->backlog_after_drain) {
        if (c->held > 0) continue;
        c->backlog_after_drain = false;
        c->backlog_done = false;
        c->backlog_cursor = "0";
      }
      if (c->backlog_done && c->exhausted) continue;
      c->current += c->weight;
      total += c->weight;
      if (!best || c->current > best->current) best = c.get();
    }
    if (best) best->current -= total;
    return best;
  }

  bool idle() const {
    // Never idle before the registry was read once: an unreachable Redis is not "no work".
    if (!registry_loaded_ || held_ > 0) return false;
    for (const auto& [id, c] : campaigns_)
      if (c->usable && c->active && (!c->backlog_done || c->backlog_after_drain)) return false;
    return true;
  }

  asio::awaitable<void> read_failed(std::error_code ec, const std::vector<campaign_rt*>& affected) {
    // The reply may have been lost after Redis delivered entries to this consumer: those sit in
    // our pending list, so each affected campaign re-reads its backlog once its slots drain.
    for (auto* c : affected) c->backlog_after_drain = true;
    log::warn("Redis read failed; retrying", {{"shard", index_}, {"error", ec.message()}});
    co_await backoff_wait();
  }

  asio::awaitable<void> read_refused(const redisReply* reply, campaign_rt* c) {
    log::error("Redis refused to read the campaign's stream; the campaign is not served",
               {{"shard", index_}, {"campaign", c->def.id}, {"reply", queue::as_string(reply)}});
    c->usable = false;
    co_return;
  }

  asio::awaitable<void> backoff_wait() {
    asio::steady_timer t(ioc_);
    t.expires_after(std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 1000)(jitter_)));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }

  std::size_t take_entries(const redisReply* reply, bool backlog) {
    campaign_rt* c = nullptr;
    return queue::for_each_entry(reply, [&](std::string_view stream, const queue::stream_entry& e) {
      if (!c || c->stream_key != stream) c = campaign_by_stream(stream);
      if (!c) return;  // cannot happen: we only read streams we know
      if (backlog) c->backlog_cursor = std::string(e.id);
      else c->exhausted = false;
      start_message(*c, e);
    });
  }

  campaign_rt* campaign_by_stream(std::string_view stream) {
    for (auto& [id, c] : campaigns_)
      if (c->stream_key == stream) return c.get();
    return nullptr;
  }

  // ---- one message ----

  void start_message(campaign_rt& c, const queue::stream_entry& e) {
    std::uint32_t idx = free_.back();
    free_.pop_back();
    ++held_;
    ++c.held;
    slot& s = *slots_[idx];
    s.campaign = &c;
    s.entry_id.assign(e.id);
    s.member.assign(e.member);
    s.attempts = 0;
    s.reason.clear();
    if (!e.well_formed) {
      finish(idx, final_state::failed, "malformed stream entry: field 'to' missing or empty");
      return;
    }
    if (auto problem = templates::email_address_problem(e.to)) {
      finish(idx, final_state::skipped, *problem);
      return;
    }
    if (auto problem = c.renderer->render_email(e.id, e.to, e.member, e.data, s.d.data)) {
      finish(idx, final_state::failed, *problem);
      return;
    }
    s.d.envelope_from = c.def.from_address;
    s.d.envelope_to.assign(e.to);
    send(idx);
  }

  void send(std::uint32_t idx) {
    slot& s = *slots_[idx];
    ++s.attempts;
    pool_->push(s.d);
  }

  void on_delivered(adapters::delivery& d) override {
    std::uint32_t idx = d.slot;
    slot& s = *slots_[idx];
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
    if (!pulling_) {
      hand_back(idx);
      return;
    }
    if (s.attempts >= cfg_.engine.max_attempts) {
      finish(idx, final_state::failed, fmt::format("gave up after {} attempts: {}", s.attempts, d.reply));
      return;
    }
    // Exponential backoff with full jitter.
    auto cap = cfg_.engine.retry_backoff * (1 << std::min<std::uint32_t>(s.attempts - 1, 16));
    auto delay = std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, cap.count())(jitter_));
    s.retry_timer.expires_after(delay);
    s.retry_timer.async_wait([this, idx](boost::system::error_code ec) {
      if (ec || !pulling_) hand_back(idx);
      else send(idx);
    });
  }

  void finish(std::uint32_t idx, final_state state, std::string_view reason) {
    slot& s = *slots_[idx];
    s.state = state;
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
    if (held_ == 0) drained_.notify();
    pull_wake_.notify();
  }

  void hand_back(std::uint32_t idx) {
    ++totals_.handed_back;
    release(idx);
  }

  // ---- recording ----

  asio::awaitable<void> recorder_loop() {
    recorder_running_ = true;
    request req;
    std::vector<reply_ptr> replies;
    std::vector<std::pair<campaign_rt*, std::vector<std::uint32_t>>> batch;
    std::vector<queue::outcome_record> records;
    std::string now;
    while (true) {
      if (records_waiting_ == 0) {
        if (recorder_stop_) break;
        co_await record_wake_.wait_for(std::chrono::milliseconds(50));
        continue;
      }
      if (records_waiting_ < cfg_.engine.record_batch && !recorder_stop_)
        co_await record_wake_.wait_for(cfg_.engine.record_interval);

      req.clear();
      batch.clear();
      now = queue::now_rfc3339();
      for (auto& [id, c] : campaigns_) {
        if (c->to_record.empty()) continue;
        records.clear();
        for (auto idx : c->to_record) {
          const slot& s = *slots_[idx];
          records.push_back({s.entry_id, s.state, s.member, s.reason});
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
        // Shutdown grace is over: the entries stay pending and are read again on the next start.
        for (auto& [c, idxs] : batch)
          for (auto idx : idxs) hand_back(idx);
        continue;
      }
      request control;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& [c, idxs] = batch[i];
        const redisReply* r = replies[i].get();
        if (queue::is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
          log::error("recording refused; entries stay pending",
                     {{"shard", index_}, {"campaign", c->def.id}, {"reply", queue::as_string(r)}});
          for (auto idx : idxs) hand_back(idx);
          continue;
        }
        for (auto idx : idxs) {
          count(slots_[idx]->state);
          release(idx);
        }
        if (queue::as_integer(r->element[1]).value_or(0) == 1) {
          ++totals_.campaigns_finished;
          log::info("campaign finished", {{"campaign", c->def.id}, {"shard", index_}});
          control.command("ZREM", keys_.registry(), c->def.id);
        }
      }
      if (!control.empty()) co_await control_conn_.async_exec_retrying(control, replies, std::chrono::seconds(30));
    }
    recorder_running_ = false;
    recorder_done_.notify();
  }

  void count(final_state s) {
    switch (s) {
      case final_state::sent: ++totals_.sent; break;
      case final_state::failed: ++totals_.failed; break;
      case final_state::skipped: ++totals_.skipped; break;
      case final_state::ambiguous: ++totals_.ambiguous; break;
    }
  }

  // ---- the registry of campaigns ----

  asio::awaitable<void> registry_loop() {
    while (!recorder_stop_) {
      co_await registry_wake_.wait_for(cfg_.engine.registry_interval);
      if (recorder_stop_) break;
      co_await refresh_registry();
    }
  }

  asio::awaitable<void> refresh_registry() {
    request req;
    std::vector<reply_ptr> replies;
    req.command("ZRANGE", keys_.registry(), 0, -1);
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read the campaign registry", {{"shard", index_}, {"error", ec.message()}});
      co_await backoff_wait();
      co_return;
    }
    if (replies[0]->type != REDIS_REPLY_ARRAY) {
      log::warn("cannot read the campaign registry", {{"shard", index_}, {"reply", queue::as_string(replies[0].get())}});
      co_return;
    }
    std::vector<std::string> ids;
    if (replies[0]->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i < replies[0]->elements; ++i) ids.emplace_back(queue::as_string(replies[0]->element[i]));

    for (auto& [id, c] : campaigns_) c->in_registry = false;
    req.clear();
    std::vector<std::string> fresh, known;
    for (auto& id : ids) {
      auto it = campaigns_.find(id);
      if (it == campaigns_.end()) {
        req.command("HGETALL", keys_.campaign(id));
        fresh.push_back(id);
      } else {
        it->second->in_registry = true;
        req.command("HGET", keys_.campaign(id), "state");
        known.push_back(id);
      }
    }
    if (auto ec = co_await control_conn_.async_exec(req, replies)) {
      log::warn("cannot read campaigns", {{"shard", index_}, {"error", ec.message()}});
      co_return;
    }
    std::size_t r = 0;
    for (auto& id : fresh) add_campaign(id, replies[r++].get());
    request control;
    for (auto& id : known) {
      auto& c = *campaigns_[id];
      auto state = queue::as_string(replies[r++].get());
      bool was_active = c.active;
      c.active = state == "active";
      if (c.active && !was_active) {
        c.exhausted = false;
        pull_wake_.notify();
      }
      if (state == "done") control.command("ZREM", keys_.registry(), id);
    }
    if (!control.empty()) co_await control_conn_.async_exec(control, replies);
    registry_loaded_ = true;
    // Forget campaigns that left the registry once nothing of theirs is in flight.
    for (auto it = campaigns_.begin(); it != campaigns_.end();) {
      if (!it->second->in_registry && it->second->held == 0 && it->second->to_record.empty()) it = campaigns_.erase(it);
      else ++it;
    }
  }

  void add_campaign(const std::string& id, const redisReply* hash) {
    auto c = std::make_unique<campaign_rt>();
    std::vector<std::pair<std::string_view, std::string_view>> fields;
    if (hash && hash->type == REDIS_REPLY_ARRAY)
      for (std::size_t i = 0; i + 1 < hash->elements; i += 2)
        fields.emplace_back(queue::as_string(hash->element[i]), queue::as_string(hash->element[i + 1]));
    std::string error;
    auto def = queue::campaign_definition::from_fields(id, fields, error);
    if (!def) {
      c->usable = false;
      log::error("campaign definition is unusable; the campaign is not served", {{"campaign", id}, {"error", error}});
      c->def.id = id;
    } else {
      c->def = std::move(*def);
      c->stream_key = keys_.recipients(id);
      c->weight = c->def.priority + 1;
      c->active = c->def.state == "active";
      if (c->def.kind != queue::channel::email) {
        c->usable = false;
        if (index_ == 0) log::warn("no adapter for the campaign's channel in this engine; not served", {{"campaign", id}, {"channel", queue::to_string(c->def.kind)}});
      } else {
        c->renderer = campaign_renderer::compile(c->def, cfg_.email.message_id_domain, error);
        if (!c->renderer) {
          c->usable = false;
          log::error("campaign templates do not compile; the campaign is not served", {{"campaign", id}, {"error", error}});
        }
      }
    }
    if (c->usable && index_ == 0) log::info("serving campaign", {{"campaign", id}, {"priority", c->def.priority}});
    campaigns_.emplace(id, std::move(c));
    pull_wake_.notify();
  }

  const config& cfg_;
  std::size_t index_;
  bool until_idle_;
  engine_totals& totals_;
  asio::io_context ioc_;
  queue::keys keys_;
  queue::connection pull_conn_, record_conn_, control_conn_;
  std::unique_ptr<adapters::smtp::pool> pool_;
  std::vector<std::unique_ptr<slot>> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t held_ = 0;
  std::size_t records_waiting_ = 0;
  std::map<std::string, std::unique_ptr<campaign_rt>, std::less<>> campaigns_;
  event pull_wake_, record_wake_, registry_wake_, drained_, recorder_done_;
  std::string consumer_;
  bool stopping_ = false;
  bool pulling_ = true;
  bool recorder_stop_ = false;
  bool recorder_running_ = false;
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
