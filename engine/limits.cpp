#include "engine/limits.hpp"

#include "templates/address.hpp"

#include <cctype>

namespace budstikke::engine {

limit_plan::limit_plan(const limits_config& cfg, const queue::keys& keys) {
  auto add = [&](std::string name, double rate, metrics::limiter kind) {
    buckets_.push_back({queue::make_token_bucket(keys.rate_bucket(name), rate, cfg.burst), kind});
    return static_cast<int>(buckets_.size() - 1);
  };
  if (cfg.global) global_ = add("global", *cfg.global, metrics::limiter::global);
  if (cfg.email) email_ = add("email", *cfg.email, metrics::limiter::adapter);
  if (cfg.sms) sms_ = add("sms", *cfg.sms, metrics::limiter::adapter);
  for (const auto& [name, rate] : cfg.tenants) tenants_[name] = add("tenant:" + name, rate, metrics::limiter::tenant);
  for (const auto& [name, rate] : cfg.domains) domains_[name] = add("domain:" + name, rate, metrics::limiter::domain);
}

int limit_plan::tenant(std::string_view name) const {
  auto it = tenants_.find(name);
  return it == tenants_.end() ? -1 : it->second;
}

std::array<int, 4> limit_plan::buckets_for(queue::channel ch, int tenant, std::string_view envelope_to) const {
  return {global_, channel(ch), tenant,
          ch == queue::channel::email ? domain(templates::address_domain(envelope_to)) : -1};
}

int limit_plan::domain(std::string_view domain) const {
  if (domains_.empty() || domain.empty() || domain.size() > 255) return -1;
  char buf[256];
  for (std::size_t i = 0; i < domain.size(); ++i)
    buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(domain[i])));
  std::string_view d(buf, domain.size());
  if (d.back() == '.') d.remove_suffix(1);  // an absolute name
  // The whole domain, then each parent: "a.mx.gmail.com", "mx.gmail.com", "gmail.com", "com".
  while (!d.empty()) {
    if (auto it = domains_.find(d); it != domains_.end()) return it->second;
    auto dot = d.find('.');
    if (dot == std::string_view::npos) break;
    d.remove_prefix(dot + 1);
  }
  return -1;
}

}  // namespace budstikke::engine
