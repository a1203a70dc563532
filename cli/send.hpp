// `budstikke send`: one e-mail or SMS by hand through the configured relays or gateway, made and
// checked as a campaign's message is (the same rendering and MIME, List-Unsubscribe, consent and
// suppression, rate limits and quiet hours), and recorded as a campaign of one recipient.
#pragma once

#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

struct send_options {
  std::string channel = "sms";
  std::string to;            // SMS: normalised to E.164 with sms.default_region; e-mail: IDN domains allowed
  std::string member;        // member id: whose consent is checked
  std::string category = "transactional";
  std::string tenant = "default";  // whose rate limit the message passes
  std::string template_dir;  // subject/text/html.mustache or sms.mustache (and partials) ...
  std::string templates_root;  // empty: the template set's parent directory
  std::string subject;       // ... or the templates themselves (Mustache, rendered with --data):
  std::string text;          //     e-mail --subject with --text and/or --html; SMS --text
  std::string html;
  std::string data = "{}";   // template variables, a JSON object
  std::string from;          // e-mail: address or 'Name <address>'; SMS: sender id (default sms.gateway.from)
  std::string from_name;     // e-mail display name, when --from has none
  bool dry_run = false;      // print the message, send nothing, write nothing
  bool ignore_quiet_hours = false;
};

// The send-time steps: check the recipient, render, quiet hours, consent and suppression, a token
// from every rate limit that applies, record the campaign `send-<time>-<random>` (one recipient,
// not in the engine's registry), send, record the outcome and an event. Prints the relay's or
// gateway's reply (and the Message-ID). Exit 0 only when the relay or gateway accepted the
// message (SMTP 250); 1 when it did not, or Redis failed; 2 for usage errors, a recipient or text
// that cannot be sent, quiet hours, or a message consent does not allow (the reason is printed).
int send_command(const config& cfg, const send_options& opt);

}  // namespace budstikke::cli
