#include "testpeers/sms_sink.hpp"

#include <atomic>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/array.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "testpeers/sink_server.hpp"
#include "support/base64.hpp"
#include "support/form_urlencoded.hpp"
#include "support/json.hpp"
#include "adapters/watchdog.hpp"

namespace budstikke::testpeers {
using adapters::io_deadline;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool parse_kannel_form(std::string_view form, sms_request_fields& out) {
  std::string value;
  while (!form.empty()) {
    auto amp = form.find('&');
    std::string_view pair = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view() : form.substr(amp + 1);
    auto eq = pair.find('=');
    std::string_view name = pair.substr(0, eq);
    value.clear();
    if (!support::decode_form_component(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), value,
                                        support::malformed_escape::reject))
      return false;
    if (name == "username") out.username = value;
    else if (name == "password") out.password = value;
    else if (name == "from") out.from = value;
    else if (name == "to") out.to = value;
    else if (name == "text") out.text = value;
    else if (name == "coding") out.coding = value;
  }
  return true;
}

struct sms_sink::impl final : sink_server {
  impl(asio::any_io_executor executor, sms_sink_options options)
      : sink_server(std::move(executor)), opt(std::move(options)), dice(opt.seed) {
    if (opt.store) {
      store = std::fopen(opt.store->c_str(), "a");
      if (store == nullptr) throw std::system_error(errno, std::generic_category(), "cannot open " + *opt.store);
    }
    listen(opt.listen_host, opt.port);
  }

  ~impl() {
    if (store != nullptr) std::fclose(store);
  }

  double next_unit() noexcept { return dice.next_unit(); }

  enum class fate { answer, slow, drop };

  asio::awaitable<void> converse(tcp::socket& socket, io_deadline& deadline) override {
    impl& self = *this;
    beast::flat_buffer buffer;
    asio::steady_timer delay(self.executor());
    http::response<http::string_body> res;
    // The end of a back-off window this connection's own 429 announced: a request on it before
    // then was certainly sent after the client had that 429 (HTTP/1.1, one request at a time).
    std::chrono::steady_clock::time_point own_backoff_until{};
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      deadline.expires_after(self.opt.idle_timeout);
      auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_tuple);
      if (ec) co_return;
      const auto& req = parser.get();
      self.counters.requests.fetch_add(1, std::memory_order_relaxed);
      res = {};
      res.version(req.version());
      res.keep_alive(req.keep_alive());
      fate f = self.handle(req, res, own_backoff_until);
      if (f == fate::drop) co_return;
      if (f == fate::slow) {
        delay.expires_after(self.opt.slow_delay);
        co_await delay.async_wait(use_tuple);
      }
      res.prepare_payload();
      deadline.expires_after(self.opt.idle_timeout);
      std::tie(ec, n) = co_await http::async_write(socket, res, use_tuple);
      if (ec || !res.keep_alive()) co_return;
    }
  }

  void answer(http::response<http::string_body>& res, http::status status, std::string_view body) {
    res.result(status);
    res.set(http::field::content_type, opt.kind == sms_sink_kind::json ? "application/json" : "text/plain");
    res.body().assign(body);
  }

  void throttle(http::response<http::string_body>& res, std::chrono::seconds wait) {
    answer(res, http::status::too_many_requests,
           opt.kind == sms_sink_kind::json ? R"({"error":"rate limited"})" : "Too many requests, try again later");
    res.set(http::field::retry_after, std::to_string(wait.count()));
  }

  fate handle(const http::request<http::string_body>& req, http::response<http::string_body>& res,
              std::chrono::steady_clock::time_point& own_backoff_until) {
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    if (now < own_backoff_until) counters.in_backoff_same_connection.fetch_add(1, std::memory_order_relaxed);
    if (now >= backoff_from && now < backoff_until) {
      counters.in_backoff.fetch_add(1, std::memory_order_relaxed);
      throttle(res, std::chrono::ceil<std::chrono::seconds>(backoff_until - now));
      return fate::answer;
    }
    sms_request_fields f;
    if (auto problem = read_fields(req, f)) {
      counters.rejected.fetch_add(1, std::memory_order_relaxed);
      answer(res, problem->first, problem->second);
      return fate::answer;
    }
    if (opt.drop_share > 0 && next_unit() < opt.drop_share) {
      counters.dropped.fetch_add(1, std::memory_order_relaxed);
      return fate::drop;
    }
    if (opt.error_share > 0 && next_unit() < opt.error_share) {
      counters.errors.fetch_add(1, std::memory_order_relaxed);
      answer(res, http::status::internal_server_error,
             opt.kind == sms_sink_kind::json ? R"({"error":"internal error"})" : "Sending failed.");
      return fate::answer;
    }
    if (opt.throttle_share > 0 && next_unit() < opt.throttle_share) {
      counters.throttled.fetch_add(1, std::memory_order_relaxed);
      backoff_from = now + opt.backoff_grace;
      backoff_until = now + opt.retry_after;
      own_backoff_until = backoff_until;
      throttle(res, opt.retry_after);
      return fate::answer;
    }
    std::uint64_t id = next_id++;
    std::string id_text = "sink-" + std::to_string(id);
    if (opt.kind == sms_sink_kind::json) {
      json::object message;
      message["id"] = id_text;
      message["status"] = "queued";
      json::object body;
      body["messages"].emplace_array().emplace_back(std::move(message));
      answer(res, http::status::ok, json::serialize(body));
    } else {
      answer(res, http::status::accepted, "0: Accepted for delivery");
    }
    if (opt.slow_share > 0 && next_unit() < opt.slow_share) {
      counters.slow.fetch_add(1, std::memory_order_relaxed);
      return fate::slow;
    }
    counters.accepted.fetch_add(1, std::memory_order_relaxed);
    bool ucs2 = f.coding == "2" || f.coding == "ucs2";
    if (ucs2) counters.ucs2.fetch_add(1, std::memory_order_relaxed);
    if (store != nullptr) {
      json::object line;
      line["id"] = id_text;
      line["to"] = f.to;
      line["from"] = f.from;
      line["text"] = f.text;
      line["coding"] = ucs2 ? "ucs2" : "gsm7";
      const std::string text = support::json_line(line);
      std::fwrite(text.data(), 1, text.size(), store);
      std::fflush(store);
    }
    return fate::answer;
  }

  // The message's fields, or the answer for a request that carries none.
  std::optional<std::pair<http::status, std::string>> read_fields(const http::request<http::string_body>& req,
                                                                  sms_request_fields& f) {
    if (opt.kind == sms_sink_kind::kannel) {
      std::string_view target = req.target();
      auto q = target.find('?');
      bool ok = true;
      if (q != std::string_view::npos) ok = parse_kannel_form(target.substr(q + 1), f);
      if (!ok) return std::pair{http::status::bad_request, std::string("Malformed request")};
      if (req.method() == http::verb::post) {
        // smsbox's POST interface: the text is the body, the rest in X-Kannel-* headers.
        if (req[http::field::content_type].substr(0, 10) != "text/plain")
          return std::pair{http::status::bad_request, std::string("Invalid content-type")};
        f.text = req.body();
        auto h = [&](const char* name, std::string& target) {
          if (auto it = req.find(name); it != req.end()) target = it->value();
        };
        h("X-Kannel-Username", f.username);
        h("X-Kannel-Password", f.password);
        h("X-Kannel-From", f.from);
        h("X-Kannel-To", f.to);
        h("X-Kannel-Coding", f.coding);
      }
      if (!opt.username.empty() && (f.username != opt.username || f.password != opt.password))
        return std::pair{http::status::forbidden, std::string("Authorization failed for sendsms")};
      if (f.to.empty()) return std::pair{http::status::bad_request, std::string("Missing receiver number")};
      if (f.text.empty()) return std::pair{http::status::bad_request, std::string("Missing text")};
      return std::nullopt;
    }
    if (!opt.bearer_token.empty() && req[http::field::authorization] != "Bearer " + opt.bearer_token)
      return std::pair{http::status::unauthorized, std::string(R"({"error":"unauthorized"})")};
    if (!opt.username.empty()) {
      std::string expected = "Basic ";
      support::append_base64(opt.username + ":" + opt.password, expected);
      if (req[http::field::authorization] != expected)
        return std::pair{http::status::unauthorized, std::string(R"({"error":"unauthorized"})")};
    }
    boost::system::error_code ec;
    json::value v = json::parse(req.body(), ec);
    const json::object* o = ec ? nullptr : v.if_object();
    if (o == nullptr) return std::pair{http::status::bad_request, std::string(R"({"error":"not a JSON object"})")};
    auto text_of = [&](const char* key, std::string& target) {
      if (const json::value* x = o->if_contains(key); x && x->is_string()) target = x->as_string();
    };
    text_of("to", f.to);
    text_of("from", f.from);
    text_of("text", f.text);
    text_of("encoding", f.coding);
    if (f.to.empty() || f.text.empty())
      return std::pair{http::status::bad_request, std::string(R"({"error":"to and text are required"})")};
    return std::nullopt;
  }

  struct atomic_stats {
    std::atomic<std::uint64_t> requests{0}, accepted{0}, rejected{0}, throttled{0}, in_backoff{0}, errors{0}, slow{0},
        dropped{0}, ucs2{0}, in_backoff_same_connection{0};
  };

  sms_sink_options opt;
  fault_dice dice;
  std::FILE* store = nullptr;
  std::uint64_t next_id = 1;
  std::chrono::steady_clock::time_point backoff_from{}, backoff_until{};
  atomic_stats counters;
};

sms_sink::sms_sink(asio::any_io_executor ex, sms_sink_options opt)
    : impl_(std::make_shared<impl>(std::move(ex), std::move(opt))) {
  impl_->start();
}

sms_sink::~sms_sink() { impl_->stop(); }

std::uint16_t sms_sink::port() const { return impl_->port(); }

void sms_sink::stop() { impl_->stop(); }

sms_sink::stats sms_sink::statistics() const {
  const auto& c = impl_->counters;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  return {impl_->connections(), get(c.requests), get(c.accepted), get(c.rejected), get(c.throttled),
          get(c.in_backoff),  get(c.errors),   get(c.slow),     get(c.dropped),  get(c.ucs2),
          get(c.in_backoff_same_connection)};
}

int run_sms_sink_until_signal(const sms_sink_options& opt) {
  return run_until_signal<sms_sink>(opt, [](const sms_sink::stats& s) {
    auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "sink: connections=%llu requests=%llu accepted=%llu rejected=%llu throttled=%llu in_backoff=%llu errors=%llu "
        "slow=%llu dropped=%llu ucs2=%llu in_backoff_same_connection=%llu\n",
        u(s.connections), u(s.requests), u(s.accepted), u(s.rejected), u(s.throttled), u(s.in_backoff), u(s.errors),
        u(s.slow), u(s.dropped), u(s.ucs2), u(s.in_backoff_same_connection));
  });
}

}  // namespace budstikke::testpeers
