#include "adapters/smtp/messenger.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "adapters/smtp/pool.hpp"
#include "support/smooth_weighted.hpp"

namespace budstikke::adapters::smtp {
namespace {

namespace asio = boost::asio;

// Several relays, one pool each. Deliveries go to the usable relays by smooth weighted
// round-robin (nginx's: an even spread, no bursts to one relay). A delivery that one relay hands
// back unsent (the relay failed, not the message) is pushed to a relay it has not tried yet; only
// when none is left does the engine see it (unsent), so each push still gets exactly one
// on_delivered. Each relay's change of state is passed on, with whether any relay is usable.
class relay_set final : public smtp_messenger {
 public:
  relay_set(asio::any_io_executor ex, const smtp_config& cfg, delivery_listener& listener)
      : user_(listener), all_reported_(ex) {
    all_reported_.expires_at(asio::steady_timer::time_point::max());
    auto list = cfg.effective_relays();
    relays_.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto r = std::make_unique<relay>();
      r->owner = this;
      r->index = static_cast<std::uint32_t>(i);
      r->weight = std::max(1u, list[i].weight);
      r->relay_pool = std::make_unique<smtp::pool>(ex, std::move(list[i]), *r);
      relays_.push_back(std::move(r));
    }
  }

  void push(delivery& d) override {
    ++outstanding_;
    relay* r = pick(0, true);
    if (r == nullptr) r = pick(0, false);  // all drained: the pool hands it back soon
    r->relay_pool->push(d);
  }

  void close() override {
    for (auto& r : relays_) r->relay_pool->close();
  }

  // Posts nothing itself: closed once every pool is closed with nothing queued.
  asio::awaitable<void> async_wait_closed() override {
    for (auto& r : relays_) co_await r->relay_pool->async_wait_closed();
    // A delivery re-routed into a pool that had just finished comes back a little later, from a
    // hand-back that pool posted: wait for it, then for that handler to be gone.
    while (outstanding_ > 0) co_await all_reported_.async_wait(asio::as_tuple(asio::use_awaitable));
    for (auto& r : relays_) co_await r->relay_pool->async_wait_closed();
  }

 private:
  struct relay final : delivery_listener {
    relay_set* owner = nullptr;
    std::uint32_t index = 0;
    unsigned weight = 1;
    long long current = 0;  // smooth weighted round-robin state
    std::unique_ptr<smtp::pool> relay_pool;
    void on_delivered(delivery& d) override { owner->on_delivered(*this, d); }
    void on_path_state(const path_event& e) override { owner->on_path_state(e); }
  };

  void on_path_state(path_event e) {
    e.any_usable = std::any_of(relays_.begin(), relays_.end(),
                               [](const std::unique_ptr<relay>& r) { return r->relay_pool->available(); });
    user_.on_path_state(e);
  }

  // The next relay not in `tried` (a bit per relay), among the available ones when asked.
  relay* pick(std::uint32_t tried, bool available_only) {
    auto it = support::pick_smooth_weighted(
        relays_, [](const std::unique_ptr<relay>& r) { return r->weight; },
        [](std::unique_ptr<relay>& r) -> long long& { return r->current; },
        [&](const std::unique_ptr<relay>& r) {
          if ((tried >> r->index) & 1u) return false;
          return !available_only || (r->relay_pool->available() && !r->relay_pool->closed());
        });
    return it == relays_.end() ? nullptr : it->get();
  }

  void on_delivered(relay& from, delivery& d) {
    if (d.result == outcome::unsent) {
      auto it = tried_.find(&d);
      std::uint32_t tried = (it == tried_.end() ? 0u : it->second) | (1u << from.index);
      if (relay* next = pick(tried, true)) {
        if (it == tried_.end()) {
          tried_.emplace(&d, tried);
        } else {
          it->second = tried;
        }
        next->relay_pool->push(d);  // never calls on_delivered from inside push
        return;
      }
    }
    if (!tried_.empty()) tried_.erase(&d);
    if (--outstanding_ == 0) all_reported_.cancel();
    user_.on_delivered(d);
  }

  delivery_listener& user_;
  std::vector<std::unique_ptr<relay>> relays_;
  // Only deliveries that are being re-routed: the relays each has tried.
  std::unordered_map<const delivery*, std::uint32_t> tried_;
  std::size_t outstanding_ = 0;  // pushed, not yet reported
  asio::steady_timer all_reported_;
};

}  // namespace

std::unique_ptr<smtp_messenger> make_smtp_messenger(asio::any_io_executor ex, const smtp_config& cfg,
                                                    delivery_listener& listener) {
  auto relays = cfg.effective_relays();
  if (relays.size() > smtp_config::max_relays) {
    throw std::runtime_error("smtp: at most " + std::to_string(smtp_config::max_relays) + " relays");
  }
  // One relay needs no routing layer.
  if (relays.size() == 1) return std::make_unique<pool>(std::move(ex), std::move(relays.front()), listener);
  return std::make_unique<relay_set>(std::move(ex), cfg, listener);
}

}  // namespace budstikke::adapters::smtp
