// Rate limits: token buckets shared through Redis (queue/rate_limit.hpp), so a configured rate is
// the total of every shard of every engine process. A message passes the buckets that apply to
// it: global, its channel's adapter (the SMTP relays together, the SMS gateway), its campaign's
// tenant and, for e-mail, its recipient's domain.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/metrics.hpp"
#include "queue/rate_limit.hpp"
#include "queue/schema.hpp"

namespace budstikke::engine {

inline constexpr double max_rate = 1e6;  // tokens per second, every rate's upper bound

struct limits_config {
  std::optional<double> global;  // messages per second, every channel together
  std::optional<double> email;   // the SMTP adapter (all relays together)
  std::optional<double> sms;     // the SMS gateway
  // Recipient domain (ASCII, IDN in xn-- form, lower case) -> rate. A domain also covers its
  // subdomains; the longest configured match wins.
  std::map<std::string, double, std::less<>> domains;
  std::map<std::string, double, std::less<>> tenants;  // campaign tenant -> rate
  // How far ahead of the steady pace a bucket lets tokens go (its GCRA tolerance): a bucket of
  // rate r lets through at most r * burst extra at once, so any 1-second window sees at most
  // r + r * burst messages.
  std::chrono::milliseconds burst{20};

  bool any() const { return global || email || sms || !domains.empty() || !tenants.empty(); }
};

// The buckets a configuration defines, and which of them a message must pass.
class limit_plan {
 public:
  struct bucket {
    queue::token_bucket spec;
    metrics::limiter kind;
  };

  limit_plan(const limits_config& cfg, const queue::keys& keys);

  bool enabled() const { return !buckets_.empty(); }
  const bucket& at(int index) const { return buckets_[static_cast<std::size_t>(index)]; }

  // Bucket indices, -1 where none is configured.
  int global() const { return global_; }
  int channel(queue::channel ch) const { return ch == queue::channel::sms ? sms_ : email_; }
  int tenant(std::string_view name) const;
  // `domain` as in the envelope (ASCII); matched without regard to case, on whole labels.
  int domain(std::string_view domain) const;

 private:
  std::vector<bucket> buckets_;
  int global_ = -1, email_ = -1, sms_ = -1;
  std::map<std::string, int, std::less<>> tenants_, domains_;
};

// The domain of an envelope address (after the last '@'), empty when there is none.
std::string_view address_domain(std::string_view address);

}  // namespace budstikke::engine
