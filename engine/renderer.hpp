// A campaign's templates, compiled once when a shard first sees the campaign, and the step that
// turns one recipient into a complete message in reusable buffers.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/delivery.hpp"
#include "config/config.hpp"
#include "queue/schema.hpp"
#include "support/result.hpp"
#include "templates/mustache.hpp"
#include "templates/sms.hpp"
#include "templates/unsubscribe.hpp"

namespace budstikke::engine {

// Why no message was made for a recipient: `skipped` (an unusable address, an SMS over the
// segment limit: nothing was attempted) or `failed` (unusable template data).
struct render_failure {
  queue::final_state state;
  std::string reason;
};

class campaign_renderer {
 public:
  // Compiles the campaign's templates (with its partials); the error names the template, line
  // and column. From `cfg`: email.message_id_domain (overrides the sender's domain in
  // Message-IDs), the List-Unsubscribe settings, sms.normalise and sms.max_segments.
  static support::result<std::unique_ptr<campaign_renderer>> compile(const queue::campaign_definition& def,
                                                                      const config& cfg);

  // Fills `d` for one recipient: the message, the envelope (an IDN domain in its xn-- form) and
  // needs_smtputf8 (a non-ASCII local part). `data_json` is the entry's template variables; `to`,
  // `id` and, for categories with List-Unsubscribe, `unsubscribe_url` are added to them.
  std::optional<render_failure> prepare_email(std::string_view entry_id, std::string_view to, std::string_view member,
                                              std::string_view data_json, adapters::delivery& d);

  // Renders only the e-mail into `out` (cleared first), with `to` as it is in To: (an address
  // that passed templates::email_address_problem). The reason when the data is unusable.
  std::optional<std::string> render_email(std::string_view entry_id, std::string_view to,
                                          std::string_view member, std::string_view data_json,
                                          std::string& out);

  // Renders the SMS for one recipient (`to` in E.164, as in d.envelope_to) into `text` and fills
  // `d`: the text, its encoding and segments, and `from` as the sender id.
  std::optional<render_failure> prepare_sms(std::string_view to, std::string_view member, std::string_view data_json,
                                            std::string_view from, templates::sms::message& text,
                                            adapters::delivery& d);

  // The Message-ID (without angle brackets) of the e-mail prepare_email rendered last.
  std::string_view message_id() const { return message_id_buf_; }

  // Renders and analyses the SMS for one recipient into `out`: the text (trailing line breaks
  // dropped, normalised if configured), its encoding and segments. `skipped` when the text is
  // empty or has more segments than the campaign allows.
  std::optional<render_failure> render_sms(std::string_view to, std::string_view member, std::string_view data_json,
                                           templates::sms::message& out);

  // Previews: called with the name of every variable a template uses but the data lacks.
  void set_missing_variable_handler(const templates::missing_variable_fn* fn) { on_missing_ = fn; }

  std::size_t max_sms_segments() const { return max_sms_segments_; }
  bool has_unsubscribe_headers() const { return unsubscribe_; }

 private:
  campaign_renderer() = default;
  std::optional<std::string> render_email_as(std::string_view entry_id, std::string_view header_to,
                                             std::string_view data_to, std::string_view member,
                                             std::string_view data_json, bool smtputf8, std::string& out);
  void make_unsubscribe_values(std::string_view member);

  std::string campaign_id_;
  std::string from_address_;  // as it goes into the envelope and From:
  std::string from_name_;
  std::string message_id_domain_;
  std::string message_id_salt_;
  bool unsubscribe_ = false;
  templates::unsubscribe_key unsubscribe_key_;  // the signing key
  std::string unsubscribe_url_, unsubscribe_mailto_;
  bool sms_normalise_ = true;
  std::size_t max_sms_segments_ = 6;
  std::optional<templates::compiled_template> subject_, text_, html_, sms_;
  const templates::missing_variable_fn* on_missing_ = nullptr;
  // Scratch buffers reused for every message.
  std::string subject_buf_, text_buf_, html_buf_, message_id_buf_, to_buf_, sms_buf_;
  std::string token_buf_, url_buf_, mailto_buf_, list_unsubscribe_buf_;
  std::unique_ptr<unsigned char[]> json_arena_;
};

}  // namespace budstikke::engine
