#include "engine/renderer.hpp"

#include <algorithm>
#include <chrono>
#include <random>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "templates/address.hpp"
#include "templates/mime.hpp"
#include "templates/unsubscribe.hpp"

namespace budstikke::engine {
namespace json = boost::json;
namespace {

constexpr std::size_t json_arena_size = 64 * 1024;
constexpr std::string_view token_placeholder = "{token}";

void replace_token(std::string_view pattern, std::string_view token, std::string& out) {
  out.clear();
  for (;;) {
    const auto at = pattern.find(token_placeholder);
    out.append(pattern.substr(0, at));
    if (at == std::string_view::npos) return;
    out.append(token);
    pattern.remove_prefix(at + token_placeholder.size());
  }
}

// Per-message JSON lives in a fixed arena: no heap traffic for typical recipient data.
class data_context {
 public:
  explicit data_context(unsigned char* arena)
      : resource_(arena, json_arena_size), value_(json::storage_ptr(&resource_)) {}

  std::optional<std::string> parse(std::string_view data_json, std::string_view to, std::string_view member) {
    json::storage_ptr sp(&resource_);
    boost::system::error_code ec;
    value_ = data_json.empty() ? json::value(json::object(sp)) : json::parse(data_json, ec, sp);
    if (ec) return fmt::format("template data is not valid JSON: {}", ec.message());
    if (!value_.is_object()) return std::string("template data is not a JSON object");
    auto& obj = value_.as_object();
    obj["to"] = to;
    if (!member.empty()) obj["id"] = member;
    return std::nullopt;
  }
  json::object& object() { return value_.as_object(); }
  const json::value& value() const { return value_; }

 private:
  json::monotonic_resource resource_;
  json::value value_;
};

// The reason for a recipient whose data makes a template blow the render budget.
std::string over_budget(std::string_view template_name) {
  return fmt::format("render budget exceeded in template {} ({} expansions or {} MiB): the message would be incomplete",
                     template_name, templates::compiled_template::max_render_expansions,
                     templates::compiled_template::max_render_bytes / (1024 * 1024));
}

}  // namespace

support::result<std::unique_ptr<campaign_renderer>> campaign_renderer::compile(const queue::campaign_definition& def,
                                                                               const config& cfg) {
  std::unique_ptr<campaign_renderer> r(new campaign_renderer());
  r->campaign_id_ = def.id;
  r->from_name_ = def.from_name;
  r->json_arena_ = std::make_unique<unsigned char[]>(json_arena_size);
  r->sms_normalise_ = cfg.sms.normalise;
  r->max_sms_segments_ = def.sms_max_segments ? static_cast<std::size_t>(*def.sms_max_segments) : cfg.sms.max_segments;

  templates::partial_sources partials(def.partials.begin(), def.partials.end());
  support::failure template_error;
  auto compile_one = [&](std::string_view name, std::optional<templates::compiled_template>& slot) {
    auto it = def.templates.find(name);
    if (it == def.templates.end()) return true;
    auto compiled = templates::compiled_template::compile(it->second, partials, name);
    if (!compiled) {
      template_error = support::fail(fmt::format("campaign {}: {}", def.id, compiled.error().to_string()));
      return false;
    }
    slot.emplace(std::move(*compiled));
    return true;
  };
  if (def.kind == queue::channel::sms) {
    if (!compile_one("sms", r->sms_)) return template_error;
    if (!r->sms_)
      return support::fail(fmt::format("campaign {}: an SMS campaign needs template:sms", def.id));
    return r;
  }

  if (!compile_one("subject", r->subject_) || !compile_one("text", r->text_) || !compile_one("html", r->html_))
    return template_error;
  if (!r->text_ && !r->html_)
    return support::fail(
        fmt::format("campaign {}: an e-mail campaign needs template:text or template:html", def.id));
  bool from_utf8 = false;
  if (def.from_address.empty())
    return support::fail(fmt::format("campaign {}: field 'from' is empty", def.id));
  if (auto problem = templates::prepare_email_address(def.from_address, r->from_address_, from_utf8))
    return support::fail(fmt::format("campaign {}: field 'from': {}", def.id, *problem));
  if (from_utf8)
    return support::fail(
        fmt::format("campaign {}: field 'from' has a non-ASCII local part; a sender must be ASCII", def.id));
  r->message_id_domain_ = cfg.email.message_id_domain;
  if (r->message_id_domain_.empty()) r->message_id_domain_ = r->from_address_.substr(r->from_address_.rfind('@') + 1);
  // Message-IDs must stay unique even if a campaign id is reused after its keys were deleted.
  r->message_id_salt_ = fmt::format("{:08x}", std::random_device{}());

  if (cfg.email.unsubscribe_enabled(def.category)) {
    r->unsubscribe_ = true;
    r->unsubscribe_key_ = {cfg.email.unsubscribe_key_id, cfg.email.unsubscribe_secret};
    r->unsubscribe_url_ = cfg.email.unsubscribe_url;
    r->unsubscribe_mailto_ = cfg.email.unsubscribe_mailto;
  }
  return r;
}

void campaign_renderer::make_unsubscribe_values(std::string_view member) {
  token_buf_.clear();
  templates::make_unsubscribe_token(unsubscribe_key_, campaign_id_, member, "email", token_buf_);
  replace_token(unsubscribe_url_, token_buf_, url_buf_);
  replace_token(unsubscribe_mailto_, token_buf_, mailto_buf_);
  list_unsubscribe_buf_.clear();
  for (const std::string* uri : {&url_buf_, &mailto_buf_}) {
    if (uri->empty()) continue;
    if (!list_unsubscribe_buf_.empty()) list_unsubscribe_buf_.append(", ");
    list_unsubscribe_buf_.push_back('<');
    list_unsubscribe_buf_.append(*uri);
    list_unsubscribe_buf_.push_back('>');
  }
}

std::optional<render_failure> campaign_renderer::prepare_email(std::string_view entry_id, std::string_view to,
                                                               std::string_view member, std::string_view data_json,
                                                               adapters::delivery& d) {
  bool smtputf8 = false;
  if (auto problem = templates::prepare_email_address(to, to_buf_, smtputf8))
    return render_failure{queue::final_state::skipped, std::string(*problem)};
  if (auto problem = render_email_as(entry_id, to_buf_, to, member, data_json, smtputf8, d.data))
    return render_failure{queue::final_state::failed, std::move(*problem)};
  d.envelope_from = from_address_;
  d.envelope_to = to_buf_;
  d.needs_smtputf8 = smtputf8;
  return std::nullopt;
}

std::optional<std::string> campaign_renderer::render_email(std::string_view entry_id, std::string_view to,
                                                           std::string_view member, std::string_view data_json,
                                                           std::string& out) {
  return render_email_as(entry_id, to, to, member, data_json, false, out);
}

std::optional<std::string> campaign_renderer::render_email_as(std::string_view entry_id, std::string_view header_to,
                                                              std::string_view data_to, std::string_view member,
                                                              std::string_view data_json, bool smtputf8,
                                                              std::string& out) {
  data_context data(json_arena_.get());
  if (auto problem = data.parse(data_json, data_to, member)) return problem;
  auto& obj = data.object();
  if (unsubscribe_) {
    make_unsubscribe_values(member);
    obj["unsubscribe_url"] = url_buf_.empty() ? mailto_buf_ : url_buf_;
  }

  subject_buf_.clear();
  text_buf_.clear();
  html_buf_.clear();
  // A render cut off by the budget is incomplete: such a message must not go out.
  if (subject_ && !subject_->render(data.value(), subject_buf_, templates::escape_mode::none, on_missing_))
    return over_budget("subject");
  if (text_ && !text_->render(data.value(), text_buf_, templates::escape_mode::none, on_missing_))
    return over_budget("text");
  if (html_ && !html_->render(data.value(), html_buf_, templates::escape_mode::html, on_missing_))
    return over_budget("html");

  std::string_view to_name;
  if (auto* name = obj.if_contains("name"); name && name->is_string()) to_name = name->as_string();

  message_id_buf_.clear();
  fmt::format_to(std::back_inserter(message_id_buf_), "{}.{}.{}@{}", campaign_id_, entry_id,
                 message_id_salt_, message_id_domain_);
  templates::header_field extra[3] = {{"X-Budstikke-Campaign", campaign_id_}};
  std::size_t extras = 1;
  if (unsubscribe_) {
    extra[extras++] = {"List-Unsubscribe", list_unsubscribe_buf_};
    // RFC 8058: one-click needs an https URI in List-Unsubscribe.
    if (!url_buf_.empty()) extra[extras++] = {"List-Unsubscribe-Post", "List-Unsubscribe=One-Click"};
  }
  templates::email_content content{
      .from = {from_name_, from_address_},
      .to = {to_name, header_to},
      .subject = subject_buf_,
      .text = text_buf_,
      .html = html_buf_,
      .message_id = message_id_buf_,
      .date = std::chrono::system_clock::now(),
      .extra_headers = std::span<const templates::header_field>(extra, extras),
      .smtputf8 = smtputf8,
  };
  out.clear();
  templates::build_email(content, out);
  return std::nullopt;
}

std::optional<render_failure> campaign_renderer::prepare_sms(std::string_view to, std::string_view member,
                                                             std::string_view data_json, std::string_view from,
                                                             templates::sms::message& text, adapters::delivery& d) {
  if (auto problem = render_sms(to, member, data_json, text)) return problem;
  d.data.assign(text.text());
  d.sms_ucs2 = text.coding() == templates::sms::encoding::ucs2;
  d.sms_segments = static_cast<std::uint16_t>(text.segments());
  d.envelope_from.assign(from);
  return std::nullopt;
}

std::optional<render_failure> campaign_renderer::render_sms(std::string_view to, std::string_view member,
                                                            std::string_view data_json, templates::sms::message& out) {
  data_context data(json_arena_.get());
  if (auto problem = data.parse(data_json, to, member)) return render_failure{queue::final_state::failed, std::move(*problem)};
  sms_buf_.clear();
  if (sms_ && !sms_->render(data.value(), sms_buf_, templates::escape_mode::none, on_missing_))
    return render_failure{queue::final_state::failed, over_budget("sms")};
  // A template file ends in a line break; an SMS should not.
  while (!sms_buf_.empty() && (sms_buf_.back() == '\n' || sms_buf_.back() == '\r')) sms_buf_.pop_back();
  if (sms_buf_.empty()) return render_failure{queue::final_state::skipped, "the SMS text is empty"};
  if (auto problem = templates::sms::analyse(sms_buf_, sms_normalise_, out))
    return render_failure{queue::final_state::failed, std::string(*problem)};
  if (out.segments() > max_sms_segments_)
    return render_failure{queue::final_state::skipped,
                          fmt::format("the SMS has {} segments, more than the campaign's maximum of {}", out.segments(),
                                      max_sms_segments_)};
  return std::nullopt;
}

}  // namespace budstikke::engine
