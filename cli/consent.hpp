// `budstikke consent show|grant|withdraw`: the consent store (queue/consent.hpp,
// docs/redis-schema.md) from the command line, for an operator answering a member's question.
// Withdrawals are applied as the admin port applies one-click unsubscribes (engine/unsubscribe.hpp).
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace budstikke::cli {

struct consent_withdraw_options {
  std::string token;
  std::string member, channel, category;  // instead of a token
  std::string source = "budstikke consent withdraw";
  bool json = false;
};
// `budstikke consent withdraw`: exit 0 when withdrawn now or before, 2 for a bad token or
// unknown campaign, 1 when Redis cannot be reached.
int consent_withdraw_command(const config& cfg, const consent_withdraw_options& opt);

struct consent_grant_options {
  std::string member, channel, category;  // category "*": every category of the channel
  std::string source;                     // required: who recorded the grant (portal, phone call, ...)
  bool json = false;
};
// `budstikke consent grant`: records the grant, replacing an earlier record (a withdrawal too),
// and says what it replaced. Exit 0, 2 for bad input, 1 when Redis cannot be reached.
int consent_grant_command(const config& cfg, const consent_grant_options& opt);

struct consent_show_options {
  std::string member;
  std::vector<std::string> emails;  // the member's addresses, looked up in the suppression lists
  std::vector<std::string> phones;
  bool json = false;
};
// `budstikke consent show`: every record of the member, the suppression entries of the addresses
// given, and what a message of each category would get now. Exit 0, 2 for bad input, 1 on Redis
// failure.
int consent_show_command(const config& cfg, const consent_show_options& opt);

}  // namespace budstikke::cli
