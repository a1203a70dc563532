// Rate limits: token buckets shared through Redis (queue/rate_limit.hpp), so a configured rate is
// the total of every shard of every engine process. A message passes the buckets that apply to
// it: global, its channel's adapter (the SMTP relays together, the SMS gateway), its campaign's
// tenant and, for e-mail, its recipient's domain.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/metrics.hpp"
#include "queue/rate_limit.hpp"
#include "queue/schema.hpp"

namespace budstikke::engine {

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
  // The buckets a message must pass: global, its channel's, its tenant's (`tenant` as tenant()
  // gave it) and, for e-mail, its recipient domain's; -1 where none is configured.
  std::array<int, 4> buckets_for(queue::channel ch, int tenant, std::string_view envelope_to) const;

 private:
  std::vector<bucket> buckets_;
  int global_ = -1, email_ = -1, sms_ = -1;
  std::map<std::string, int, std::less<>> tenants_, domains_;
};


}  // namespace budstikke::engine
