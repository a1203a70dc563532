#include "adapters/sms_http/messenger.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <stdexcept>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "adapters/sms_http/curl_multi.hpp"
#include "adapters/sms_http/protocol.hpp"
#include "support/pending_handlers.hpp"

namespace budstikke::adapters::sms_http {
namespace {

namespace asio = boost::asio;

// A gateway's answer is read up to this much: ids and reasons are short.
constexpr std::size_t max_body = 16 * 1024;

// One request slot: an easy handle (its connection stays in curl's keep-alive cache) and the
// buffers of the message it carries. `concurrency` of them bound what is in flight.
struct transfer {
  CURL* easy = nullptr;
  delivery* d = nullptr;
  http_request request;
  curl_slist* headers = nullptr;
  std::string body;
  std::string retry_after;
  char error[CURL_ERROR_SIZE] = {};
  int attempts = 0;  // requests curl issued for this message
  long status = 0;   // from the status line, as the headers arrive
  bool held = false;  // not sent: the gateway was paused when curl was about to send it
  bool probe = false;  // a request with no message: is the suspended gateway reachable again?
  const gateway_config* cfg = nullptr;

  ~transfer() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (easy != nullptr) curl_easy_cleanup(easy);
  }

  static std::size_t on_body(char* data, std::size_t, std::size_t n, void* userp) {
    auto* t = static_cast<transfer*>(userp);
    if (t->body.size() < max_body) t->body.append(data, std::min(n, max_body - t->body.size()));
    return n;
  }

  // curl resends a request on a fresh connection when a reused one closed without an answer.
  // The gateway may have acted on the first: sending again could text a member twice, so the
  // second attempt is refused here and the message is reported ambiguous instead.
  // It is also the last moment to honour a pause: curl may start a request it queued on a
  // connection the instant that connection delivered a 429, before we have seen the 429's result.
  static int on_before_request(void* userp, char*, char*, int, int) {
    auto* t = static_cast<transfer*>(userp);
    if (!t->probe && t->attempts == 0 && gateway_backoff::clock::now() < t->cfg->backoff->paused_until()) {
      t->held = true;
      return CURL_PREREQFUNC_ABORT;
    }
    return ++t->attempts == 1 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
  }

  static std::size_t on_header(char* data, std::size_t, std::size_t n, void* userp) {
    auto* t = static_cast<transfer*>(userp);
    std::string_view line(data, n);
    if (line.substr(0, 5) == "HTTP/") {
      auto sp = line.find(' ');
      t->status = sp == std::string_view::npos ? 0 : std::strtol(line.data() + sp + 1, nullptr, 10);
      t->retry_after.clear();  // a 100 Continue's headers are not the answer's
      return n;
    }
    constexpr std::string_view name = "retry-after:";
    if (line.size() > name.size()) {
      bool match = true;
      for (std::size_t i = 0; i < name.size() && match; ++i)
        match = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))) == name[i];
      if (match) {
        line.remove_prefix(name.size());
        while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
        t->retry_after.assign(line.substr(0, 128));
        // Pause at once, not when the transfer is reported: curl may send another queued request
        // before that (see on_before_request). classify() computes the same pause again.
        if (t->status == 429 || t->status == 503) {
          if (auto wait = parse_retry_after(t->retry_after, std::chrono::system_clock::now())) {
            auto ms = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(*wait), t->cfg->max_retry_after);
            t->cfg->backoff->pause_until(gateway_backoff::clock::now() + ms);
          }
        }
      }
    }
    return n;
  }
};

class gateway final : public sms_messenger, transfer_listener {
 public:
  gateway(asio::any_io_executor ex, const gateway_config& cfg, delivery_listener& listener)
      : ex_(ex),
        cfg_(cfg),
        listener_(listener),
        multi_(ex, *this, std::max<std::size_t>(1, cfg.concurrency)),
        health_(cfg.health ? cfg.health : std::make_shared<path_health>()),
        resume_(ex),
        watch_(ex),
        all_reported_(ex),
        handlers_(ex) {
    all_reported_.expires_at(asio::steady_timer::time_point::max());
    const std::size_t n = std::max<std::size_t>(1, cfg.concurrency);
    transfers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto t = std::make_unique<transfer>();
      t->cfg = &cfg_;
      t->easy = curl_easy_init();
      if (t->easy == nullptr) throw std::runtime_error("curl_easy_init failed");
      configure(*t);
      idle_.push_back(t.get());
      transfers_.push_back(std::move(t));
    }
  }

  ~gateway() override { multi_.shutdown(); }

  void push(delivery& d) override {
    ++outstanding_;
    waiting_.push_back(&d);
    schedule_pump();
  }

  // What was pushed is sent, then async_wait_closed closes connections; what waits for a pause to
  // end goes back at once (the engine keeps it for the next start).
  void close() override {
    closing_ = true;
    resume_.cancel();
    watch_.cancel();
    schedule_pump();
  }

  // Closed means nothing of ours is left to run: every delivery reported, the connections closed,
  // and no posted pump or resume wait still queued (the owner may destroy us the moment this ends).
  asio::awaitable<void> async_wait_closed() override {
    while (outstanding_ > 0) co_await all_reported_.async_wait(asio::as_tuple(asio::use_awaitable));
    multi_.shutdown();  // closes the keep-alive connections and drops a probe still running
    resume_.cancel();
    watch_.cancel();
    co_await handlers_.async_wait_none();
  }

  const stats& statistics() const override { return stats_; }

 private:
  void configure(transfer& t) {
    CURL* e = t.easy;
    multi_.prepare(e);
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &transfer::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &transfer::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, &transfer::on_before_request);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, &t);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(cfg_.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(cfg_.request_timeout.count()));
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, static_cast<long>(std::max<long long>(1, cfg_.idle_timeout.count() / 1000)));
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg_.tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg_.tls_verify ? 2L : 0L);
    if (!cfg_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, cfg_.ca_file.c_str());
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    // "" is no proxy at all: curl would otherwise take one from http_proxy and the like.
    curl_easy_setopt(e, CURLOPT_PROXY, cfg_.proxy.c_str());
  }

  void schedule_pump() {
    if (pump_posted_) return;
    pump_posted_ = true;
    asio::post(ex_, handlers_.wrap([this] {
      pump_posted_ = false;
      pump();
    }));
  }

  void pump() {
    if (!health_->usable()) {
      // Suspended (by any shard): nothing goes out but the probe; what waits goes back unsent.
      hand_back_unsent();
      sync_path();
      return;
    }
    const auto now = gateway_backoff::clock::now();
    const auto until = cfg_.backoff->paused_until();
    if (now < until) {
      // No request during the pause. What waits stays queued until it is over (bounded by the
      // engine's send window), unless we are closing: then it goes back to the engine.
      if (!closing_) {
        if (resume_at_ != until) {
          resume_at_ = until;
          resume_.expires_at(until);
          resume_.async_wait(handlers_.wrap([this](boost::system::error_code ec) {
            if (!ec) pump();
          }));
        }
        return;
      }
      auto rest = std::chrono::ceil<std::chrono::milliseconds>(until - now);
      while (!waiting_.empty()) {
        delivery* d = waiting_.front();
        waiting_.pop_front();
        ++stats_.paused;
        d->result = outcome::transient;
        d->reply = "local: the gateway asked for a pause (Retry-After); not sent";
        d->retry_after = rest;
        report(*d);
      }
      return;
    }
    while (!waiting_.empty() && !idle_.empty()) {
      delivery* d = waiting_.front();
      waiting_.pop_front();
      transfer* t = idle_.back();
      idle_.pop_back();
      start(*t, *d);
    }
  }

  void start(transfer& t, delivery& d) {
    t.d = &d;
    build_request(cfg_, {d.envelope_to, d.envelope_from, d.data, d.sms_ucs2}, t.request);
    t.body.clear();
    t.retry_after.clear();
    t.error[0] = '\0';
    t.attempts = 0;
    t.status = 0;
    t.held = false;
    t.probe = false;
    CURL* e = t.easy;
    curl_easy_setopt(e, CURLOPT_URL, t.request.url.c_str());
    switch (t.request.method) {
      case http_method::get:
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        break;
      case http_method::post:
      case http_method::put:
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t.request.body.data());
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(t.request.body.size()));
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t.request.method == http_method::put ? "PUT" : static_cast<const char*>(nullptr));
        break;
    }
    if (t.headers != nullptr) curl_slist_free_all(t.headers);
    t.headers = nullptr;
    for (const auto& h : t.request.headers) t.headers = curl_slist_append(t.headers, h.c_str());
    t.headers = curl_slist_append(t.headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
    ++stats_.requests;
    multi_.add(e);
  }

  void on_transfer_done(CURL* easy, CURLcode code) override {
    transfer* t = nullptr;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
    if (t->probe) {
      probe_done(*t, easy, code);
      return;
    }
    delivery& d = *t->d;
    t->d = nullptr;
    if (t->held) {
      // Never sent: it waits again, first in line, for the pause to end.
      idle_.push_back(t);
      waiting_.push_front(&d);
      pump();
      return;
    }
    if (code == CURLE_OK) {
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      classify(cfg_, {status, t->retry_after, t->body}, std::chrono::system_clock::now(), verdict_);
    } else {
      long sent = 0;
      curl_easy_getinfo(easy, CURLINFO_REQUEST_SIZE, &sent);
      std::string_view detail = t->error[0] != '\0' ? std::string_view(t->error) : curl_easy_strerror(code);
      if (code == CURLE_ABORTED_BY_CALLBACK && t->attempts > 1) detail = "closed without an answer; not resent";
      classify(failure_of(code, sent > 0 || t->attempts > 1), detail, verdict_);
    }
    if (verdict_.retry_after.count() > 0) {
      cfg_.backoff->pause_until(gateway_backoff::clock::now() + verdict_.retry_after);
    }
    d.result = verdict_.result;
    d.retry_after = verdict_.retry_after;
    if (verdict_.provider_id.empty()) {
      d.reply = std::move(verdict_.reply);
    } else {
      d.reply.assign(verdict_.reply, 0, verdict_.reply.find(' '));
      d.reply.append(" id=").append(verdict_.provider_id);
    }
    switch (d.result) {
      case outcome::accepted: ++stats_.accepted; break;
      case outcome::transient: ++stats_.transient; break;
      case outcome::permanent: ++stats_.permanent; break;
      case outcome::ambiguous: ++stats_.ambiguous; break;
      case outcome::unsent: ++stats_.unsent; break;
    }
    idle_.push_back(t);
    // Any answer of the gateway's own says it is there; no answer, or one from a proxy that
    // cannot reach it, suspends it for every shard.
    if (d.result == outcome::unsent) {
      d.retry_after = std::max(d.retry_after, path_failed(d.reply));
    } else if (health_->succeeded()) {
      log_path_change("sms gateway usable again", {});
    }
    report(d);
    sync_path();
    pump();
  }

  // ---- the path: suspended while the gateway cannot be reached, probed with backoff ----

  // Returns the wait until the next probe.
  std::chrono::milliseconds path_failed(std::string_view reason) {
    const auto now = path_health::clock::now();
    if (health_->failed(reason, now, next_random(), cfg_.probes())) log_path_change("sms gateway suspended", reason);
    return time_until(health_->snapshot().next_probe, now);
  }

  // What waits goes back unsent, to be retried after the next probe.
  void hand_back_unsent() {
    if (waiting_.empty()) return;
    const auto view = health_->snapshot();
    const auto wait = time_until(view.next_probe, path_health::clock::now());
    while (!waiting_.empty()) {
      delivery* d = waiting_.front();
      waiting_.pop_front();
      ++stats_.unsent;
      d->result = outcome::unsent;
      d->reply = "local: the gateway is suspended: " + view.reason;
      d->retry_after = wait;
      report(*d);
    }
  }

  // Tells the listener of a change of the shared state, and watches the path while it is not usable.
  void sync_path() {
    const auto view = health_->snapshot();
    if (view.generation != reported_generation_) {
      reported_generation_ = view.generation;
      listener_.on_path_state(event_of("sms", path_name_, view, path_health::clock::now()));
    }
    if (!view.usable()) watch_path(view.next_probe);
  }

  // Wakes at the next probe (or within watch_interval, to learn of another shard's probe) and
  // takes the probe when it is ours to take.
  void watch_path(path_health::clock::time_point next_probe) {
    if (watching_ || closing_) return;
    watching_ = true;
    const auto now = path_health::clock::now();
    watch_.expires_at(std::clamp(next_probe, now, now + watch_interval));
    watch_.async_wait(handlers_.wrap([this](boost::system::error_code ec) {
      watching_ = false;
      if (ec || closing_) return;
      if (!idle_.empty() && health_->take_probe(path_health::clock::now(), cfg_.connect_timeout + cfg_.request_timeout))
        start_probe();
      sync_path();
      if (health_->usable()) pump();
    }));
  }

  // A GET of the gateway's URL with no message and no credentials: any HTTP answer but 502, 503
  // or 504 says the gateway is there. It cannot send anything.
  void start_probe() {
    transfer& t = *idle_.back();
    idle_.pop_back();
    t.d = nullptr;
    t.probe = true;
    t.held = false;
    t.body.clear();
    t.retry_after.clear();
    t.error[0] = '\0';
    t.attempts = 0;
    t.status = 0;
    CURL* e = t.easy;
    curl_easy_setopt(e, CURLOPT_URL, probe_url_.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    if (t.headers != nullptr) curl_slist_free_all(t.headers);
    t.headers = nullptr;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
    ++stats_.probes;
    multi_.add(e);
  }

  void probe_done(transfer& t, CURL* easy, CURLcode code) {
    t.probe = false;
    idle_.push_back(&t);
    long status = 0;
    if (code == CURLE_OK) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK && !is_gateway_unavailable(status) && status != 503) {
      if (health_->succeeded()) log_path_change("sms gateway usable again", {});
    } else {
      std::string reason = code == CURLE_OK ? fmt::format("the gateway answered {}", status)
                                            : fmt::format("cannot reach the gateway: {}",
                                                          t.error[0] != '\0' ? t.error : curl_easy_strerror(code));
      path_failed(reason);
    }
    sync_path();
    pump();
  }

  void log_path_change(std::string_view event, std::string_view detail) {
    if (cfg_.log) cfg_.log(event, path_name_, detail);
  }

  std::uint64_t next_random() noexcept {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  static transport_failure failure_of(CURLcode code, bool request_sent) {
    switch (code) {
      case CURLE_COULDNT_RESOLVE_HOST:
      case CURLE_COULDNT_RESOLVE_PROXY:
      case CURLE_COULDNT_CONNECT:
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_CERTPROBLEM:
        return transport_failure::connect;
      case CURLE_OPERATION_TIMEDOUT:
        return request_sent ? transport_failure::timeout_after_send : transport_failure::timeout_unsent;
      case CURLE_SEND_ERROR:
        // "Connection died, tried 5 times": an earlier attempt of this request may have got through.
        return request_sent ? transport_failure::lost_after_send : transport_failure::send;
      default:
        return request_sent ? transport_failure::lost_after_send : transport_failure::connect;
    }
  }

  void report(delivery& d) {
    if (--outstanding_ == 0) all_reported_.cancel();
    listener_.on_delivered(d);
  }

  asio::any_io_executor ex_;
  const gateway_config cfg_;  // a copy: the pause (backoff) stays shared
  delivery_listener& listener_;
  curl_multi multi_;
  std::vector<std::unique_ptr<transfer>> transfers_;
  std::vector<transfer*> idle_;
  std::deque<delivery*> waiting_;
  verdict verdict_;
  std::size_t outstanding_ = 0;
  bool pump_posted_ = false;
  bool closing_ = false;
  std::shared_ptr<path_health> health_;  // shared by every shard's gateway
  std::string path_name_ = gateway_name(cfg_);
  std::string probe_url_ = probe_url(cfg_);
  std::uint64_t reported_generation_ = 0;  // of the shared path state, as last told to the listener
  bool watching_ = false;
  asio::steady_timer resume_;  // ends a pause for what waits
  asio::steady_timer watch_;   // watches the path while it is not usable
  std::uint64_t rng_ = 0x9e3779b97f4a7c15ULL ^ reinterpret_cast<std::uintptr_t>(this);
  static constexpr std::chrono::milliseconds watch_interval{250};
  gateway_backoff::clock::time_point resume_at_{};
  asio::steady_timer all_reported_;
  stats stats_;
  support::pending_handlers handlers_;  // last: destroyed first, so a late handler finds us gone
};

}  // namespace

std::unique_ptr<sms_messenger> make_sms_messenger(asio::any_io_executor ex, const gateway_config& cfg,
                                                  delivery_listener& listener) {
  return std::make_unique<gateway>(std::move(ex), cfg, listener);
}

}  // namespace budstikke::adapters::sms_http
