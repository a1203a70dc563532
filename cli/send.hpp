// `budstikke send`: one message by hand through the configured gateway, with the same checks a
// campaign's message gets (number, consent and suppression, segment limit).
#pragma once

#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

struct send_options {
  std::string channel = "sms";
  std::string to;            // as typed; normalised to E.164 with sms.default_region
  std::string member;        // member id: whose consent is checked
  std::string category = "transactional";
  std::string template_dir;  // sms.mustache (and partials) ...
  std::string templates_root;  // empty: the template set's parent directory
  std::string text;          // ... or the text itself (a Mustache template too)
  std::string data = "{}";   // template variables, a JSON object
  std::string from;          // sender id; default sms.gateway.from
};

// Prints the encoding, the segments and the gateway's answer. 0 when the gateway accepted the
// message, 1 when it did not (or Redis could not be asked about consent), 2 for usage errors,
// an invalid number, a text that cannot be sent or a message consent does not allow.
int send_command(const config& cfg, const send_options& opt);

}  // namespace budstikke::cli
