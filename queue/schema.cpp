#include "queue/schema.hpp"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace budstikke::queue {

std::optional<channel> parse_channel(std::string_view s) {
  if (s == "email") return channel::email;
  if (s == "sms") return channel::sms;
  return std::nullopt;
}

std::string_view to_string(channel c) { return c == channel::email ? "email" : "sms"; }

std::string_view to_string(final_state s) {
  switch (s) {
    case final_state::sent: return "sent";
    case final_state::failed: return "failed";
    case final_state::skipped: return "skipped";
    case final_state::ambiguous: return "ambiguous";
  }
  return "unknown";
}

bool valid_campaign_id(std::string_view id) {
  return !id.empty() && id.size() <= max_id_length &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

std::optional<std::string> recipient_size_problem(std::string_view to, std::string_view member, std::string_view data) {
  if (to.size() > max_to_bytes) return fmt::format("'{}' longer than {} bytes", field_to, max_to_bytes);
  if (member.size() > max_member_id_bytes)
    return fmt::format("'{}' (member id) longer than {} bytes", field_member, max_member_id_bytes);
  if (data.size() > max_data_bytes) return fmt::format("template data larger than {} KiB", max_data_bytes / 1024);
  return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> campaign_definition::to_fields() const {
  std::vector<std::pair<std::string, std::string>> f{
      {"id", id},
      {"channel", std::string(to_string(kind))},
      {"category", category},
      {"tenant", tenant},
      {"priority", std::to_string(priority)},
      {"from", from_address},
      {"from_name", from_name},
      {"state", state},
      {"created_at", created_at},
  };
  if (total) f.emplace_back("total", std::to_string(*total));
  if (sms_max_segments) f.emplace_back("sms_max_segments", std::to_string(*sms_max_segments));
  for (const auto& [name, source] : templates)
    f.emplace_back(std::string(template_field_prefix) + name, source);
  for (const auto& [name, source] : partials)
    f.emplace_back(std::string(partial_field_prefix) + name, source);
  return f;
}

support::result<campaign_definition> campaign_definition::from_fields(
    std::string_view id, const std::vector<std::pair<std::string_view, std::string_view>>& fields) {
  campaign_definition c;
  c.id = std::string(id);
  bool have_channel = false;
  for (const auto& [name, value] : fields) {
    if (name == "channel") {
      auto ch = parse_channel(value);
      if (!ch) {
        return support::fail(fmt::format("campaign {}: field 'channel' is '{}', expected email or sms", id, value));
      }
      c.kind = *ch;
      have_channel = true;
    } else if (name == "category") {
      c.category = std::string(value);
    } else if (name == "tenant") {
      c.tenant = std::string(value);
    } else if (name == "priority") {
      int p = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), p);
      if (ec != std::errc() || ptr != value.data() + value.size() || p < min_priority || p > max_priority) {
        return support::fail(fmt::format("campaign {}: field 'priority' is '{}', expected {}..{}", id, value,
                            min_priority, max_priority));
      }
      c.priority = p;
    } else if (name == "from") {
      c.from_address = std::string(value);
    } else if (name == "from_name") {
      c.from_name = std::string(value);
    } else if (name == "state") {
      c.state = std::string(value);
    } else if (name == "created_at") {
      c.created_at = std::string(value);
    } else if (name == "total") {
      std::int64_t t = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), t);
      if (ec != std::errc() || ptr != value.data() + value.size() || t < 0) {
        return support::fail(fmt::format("campaign {}: field 'total' is '{}', expected a count", id, value));
      }
      c.total = t;
    } else if (name == "sms_max_segments") {
      int n = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > 255) {
        return support::fail(fmt::format("campaign {}: field 'sms_max_segments' is '{}', expected 1..255", id, value));
      }
      c.sms_max_segments = n;
    } else if (name.substr(0, template_field_prefix.size()) == template_field_prefix) {
      c.templates.emplace(name.substr(template_field_prefix.size()), value);
    } else if (name.substr(0, partial_field_prefix.size()) == partial_field_prefix) {
      c.partials.emplace(name.substr(partial_field_prefix.size()), value);
    }
  }
  if (!have_channel) {
    return support::fail(fmt::format("campaign {}: field 'channel' is missing", id));
  }
  return c;
}

}  // namespace budstikke::queue
