// `budstikke consent withdraw`: a withdrawal of consent from the command line, applied as the
// admin port applies one-click unsubscribes (engine/unsubscribe.hpp).
#pragma once

#include <string>

#include "config/config.hpp"

namespace budstikke::cli {

struct consent_withdraw_options {
  std::string token;
  std::string member, channel, category;  // instead of a token
  std::string source = "budstikke consent withdraw";
};
// `budstikke consent withdraw`: exit 0 when withdrawn now or before, 2 for a bad token or
// unknown campaign, 1 when Redis cannot be reached.
int consent_withdraw_command(const config& cfg, const consent_withdraw_options& opt);

}  // namespace budstikke::cli
