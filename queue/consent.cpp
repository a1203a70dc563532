#include "queue/consent.hpp"

#include <cctype>

#include <fmt/format.h>

namespace budstikke::queue {

std::string consent_key(const keys& k, std::string_view member) {
  return k.prefix() + "consent:{" + std::string(member) + "}";
}

std::string suppression_key(const keys& k, channel ch) {
  return k.prefix() + "suppressed:" + std::string(to_string(ch));
}

std::string consent_field(channel ch, std::string_view category) {
  return std::string(to_string(ch)) + ":" + std::string(category);
}

std::string channel_wide_consent_field(channel ch) { return std::string(to_string(ch)) + ":*"; }

std::string suppression_member(channel ch, std::string_view address) {
  std::string s(address);
  if (ch == channel::email)
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<consent_record> parse_consent(std::string_view value) {
  auto bar = value.find('|');
  auto verdict = value.substr(0, bar);
  consent_record r;
  if (verdict == "granted") r.granted = true;
  else if (verdict != "withdrawn") return std::nullopt;
  if (bar != std::string_view::npos) {
    auto rest = value.substr(bar + 1);
    auto bar2 = rest.find('|');
    r.at = rest.substr(0, bar2);
    if (bar2 != std::string_view::npos) r.source = rest.substr(bar2 + 1);
  }
  return r;
}

std::string format_consent(bool granted, std::string_view at, std::string_view source) {
  return fmt::format("{}|{}|{}", granted ? "granted" : "withdrawn", at, source);
}

std::string format_suppression(std::string_view reason, std::string_view at) {
  return fmt::format("{}|{}", reason, at);
}

suppression_record parse_suppression(std::string_view value) {
  const auto bar = value.find('|');
  if (bar == std::string_view::npos) return {value, {}};
  return {value.substr(0, bar), value.substr(bar + 1)};
}

std::optional<std::string> consent_problem(const redisReply* specific, const redisReply* channel_wide,
                                           const redisReply* suppressed, bool consent_required,
                                           bool have_member) {
  if (!is_nil(suppressed) && !is_error(suppressed)) {
    return fmt::format("suppressed: {}", parse_suppression(as_string(suppressed)).reason);
  }
  const redisReply* decisive = !is_nil(specific) && !is_error(specific) ? specific : channel_wide;
  if (!is_nil(decisive) && !is_error(decisive)) {
    auto record = parse_consent(as_string(decisive));
    if (!record) return std::string("consent record is malformed");
    if (!record->granted) return fmt::format("consent withdrawn {} ({})", record->at, record->source);
    return std::nullopt;
  }
  if (!consent_required) return std::nullopt;
  if (!have_member) return std::string("no member id to check consent against");
  return std::string("no consent");
}

std::optional<std::string> lookup_problem(const redisReply* consent, const redisReply* suppressed,
                                          bool consent_required, bool have_member) {
  if (!consent) return consent_problem(nullptr, nullptr, suppressed, false, have_member);
  if (consent->type != REDIS_REPLY_ARRAY || consent->elements != 2)
    return fmt::format("consent record unreadable: {}", as_string(consent));
  return consent_problem(consent->element[0], consent->element[1], suppressed, consent_required, have_member);
}

void append_withdraw_consent(request& req, const keys& k, std::string_view member, std::string_view field,
                             std::string_view value) {
  req.eval(withdraw_consent_script, 1, consent_key(k, member), field, value);
}

void append_grant_consent(request& req, const keys& k, std::string_view member, std::string_view field,
                          std::string_view value) {
  const auto key = consent_key(k, member);
  req.command("MULTI");
  req.command("HGET", key, field);
  req.command("HSET", key, field, value);
  req.command("EXEC");
}

void append_consent_lookup(request& req, const keys& k, channel ch, std::string_view category,
                           std::string_view member, std::string_view address, bool read_consent) {
  if (read_consent)
    req.command("HMGET", consent_key(k, member), consent_field(ch, category), channel_wide_consent_field(ch));
  req.command("HGET", suppression_key(k, ch), suppression_member(ch, address));
}

}  // namespace budstikke::queue
