// A campaign's templates, compiled once when a shard first sees the campaign, and the step that
// turns one recipient into a complete message in a reusable buffer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "queue/schema.hpp"
#include "templates/mustache.hpp"

namespace budstikke::engine {

class campaign_renderer {
 public:
  // Compiles the campaign's templates (with its partials); the error names the template, line
  // and column. `message_id_domain` overrides the sender's domain in Message-IDs.
  static std::unique_ptr<campaign_renderer> compile(const queue::campaign_definition& def,
                                                    std::string_view message_id_domain,
                                                    std::string& error);

  // Renders the e-mail for one recipient into `out` (cleared first). `data_json` is the entry's
  // template variables; `to` and `id` are added to them. The reason when the data is unusable.
  std::optional<std::string> render_email(std::string_view entry_id, std::string_view to,
                                          std::string_view member, std::string_view data_json,
                                          std::string& out);

 private:
  campaign_renderer() = default;

  std::string campaign_id_;
  std::string from_address_;
  std::string from_name_;
  std::string message_id_domain_;
  std::string message_id_salt_;
  std::optional<templates::compiled_template> subject_, text_, html_;
  // Scratch buffers reused for every message.
  std::string subject_buf_, text_buf_, html_buf_, message_id_buf_;
  std::unique_ptr<unsigned char[]> json_arena_;
};

}  // namespace budstikke::engine
