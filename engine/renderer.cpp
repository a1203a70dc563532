#include "engine/renderer.hpp"

#include <chrono>
#include <random>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "templates/mime.hpp"

namespace budstikke::engine {
namespace json = boost::json;
namespace {

constexpr std::size_t json_arena_size = 64 * 1024;

}  // namespace

std::unique_ptr<campaign_renderer> campaign_renderer::compile(const queue::campaign_definition& def,
                                                              std::string_view message_id_domain,
                                                              std::string& error) {
  std::unique_ptr<campaign_renderer> r(new campaign_renderer());
  r->campaign_id_ = def.id;
  r->from_address_ = def.from_address;
  r->from_name_ = def.from_name;
  r->message_id_domain_ = std::string(message_id_domain);
  if (r->message_id_domain_.empty()) {
    auto at = def.from_address.rfind('@');
    r->message_id_domain_ = at == std::string::npos ? "budstikke.invalid" : def.from_address.substr(at + 1);
  }
  // Message-IDs must stay unique even if a campaign id is reused after its keys were deleted.
  r->message_id_salt_ = fmt::format("{:08x}", std::random_device{}());
  r->json_arena_ = std::make_unique<unsigned char[]>(json_arena_size);

  templates::partial_sources partials(def.partials.begin(), def.partials.end());
  auto compile_one = [&](std::string_view name, std::optional<templates::compiled_template>& slot) {
    auto it = def.templates.find(name);
    if (it == def.templates.end()) return true;
    auto compiled = templates::compiled_template::compile(it->second, partials, name);
    if (!compiled) {
      error = fmt::format("campaign {}: {}", def.id, compiled.error().to_string());
      return false;
    }
    slot.emplace(std::move(*compiled));
    return true;
  };
  if (def.kind == queue::channel::email) {
    if (!compile_one("subject", r->subject_) || !compile_one("text", r->text_) ||
        !compile_one("html", r->html_))
      return nullptr;
    if (!r->text_ && !r->html_) {
      error = fmt::format("campaign {}: an e-mail campaign needs template:text or template:html", def.id);
      return nullptr;
    }
    if (def.from_address.empty()) {
      error = fmt::format("campaign {}: field 'from' is empty", def.id);
      return nullptr;
    }
  }
  return r;
}

std::optional<std::string> campaign_renderer::render_email(std::string_view entry_id, std::string_view to,
                                                           std::string_view member, std::string_view data_json,
                                                           std::string& out) {
  // Per-message JSON lives in a fixed arena: no heap traffic for typical recipient data.
  json::monotonic_resource arena(json_arena_.get(), json_arena_size);
  json::storage_ptr sp(&arena);
  boost::system::error_code ec;
  json::value data = data_json.empty() ? json::value(json::object(sp)) : json::parse(data_json, ec, sp);
  if (ec) return fmt::format("template data is not valid JSON: {}", ec.message());
  if (!data.is_object()) return std::string("template data is not a JSON object");
  auto& obj = data.as_object();
  obj["to"] = to;
  if (!member.empty()) obj["id"] = member;

  subject_buf_.clear();
  text_buf_.clear();
  html_buf_.clear();
  if (subject_) subject_->render(data, subject_buf_, templates::escape_mode::none);
  if (text_) text_->render(data, text_buf_, templates::escape_mode::none);
  if (html_) html_->render(data, html_buf_, templates::escape_mode::html);

  std::string_view to_name;
  if (auto* name = obj.if_contains("name"); name && name->is_string()) to_name = name->as_string();

  message_id_buf_.clear();
  fmt::format_to(std::back_inserter(message_id_buf_), "{}.{}.{}@{}", campaign_id_, entry_id,
                 message_id_salt_, message_id_domain_);
  const templates::header_field extra[] = {{"X-Budstikke-Campaign", campaign_id_}};
  templates::email_content content{
      .from = {from_name_, from_address_},
      .to = {to_name, to},
      .subject = subject_buf_,
      .text = text_buf_,
      .html = html_buf_,
      .message_id = message_id_buf_,
      .date = std::chrono::system_clock::now(),
      .extra_headers = extra,
  };
  out.clear();
  templates::build_email(content, out);
  return std::nullopt;
}

}  // namespace budstikke::engine
