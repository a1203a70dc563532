#include "adapters/sms_http/phone.hpp"

#include <phonenumbers/phonenumberutil.h>

namespace budstikke::adapters::sms_http {
namespace pn = i18n::phonenumbers;

namespace {

// libphonenumber has no upper bound of its own on what it is asked to parse.
constexpr std::size_t max_input = 64;

}  // namespace

bool is_known_region(std::string_view region) {
  std::set<std::string> regions;
  pn::PhoneNumberUtil::GetInstance()->GetSupportedRegions(&regions);
  return regions.count(std::string(region)) != 0;
}

std::optional<std::string_view> normalise_phone(std::string_view number, std::string_view default_region,
                                                std::string& out) {
  out.clear();
  if (number.size() > max_input) return "the phone number is too long";
  const pn::PhoneNumberUtil& util = *pn::PhoneNumberUtil::GetInstance();
  pn::PhoneNumber parsed;
  auto error = util.Parse(std::string(number), std::string(default_region), &parsed);
  if (error != pn::PhoneNumberUtil::NO_PARSING_ERROR) return "not a phone number";
  // GetNumberType is UNKNOWN exactly when IsValidNumber is false (both match the region's
  // patterns): one pass over the patterns instead of two.
  switch (util.GetNumberType(parsed)) {
    case pn::PhoneNumberUtil::UNKNOWN: return "not a valid phone number";
    case pn::PhoneNumberUtil::FIXED_LINE: return "a fixed-line number cannot receive SMS";
    case pn::PhoneNumberUtil::TOLL_FREE:
    case pn::PhoneNumberUtil::PREMIUM_RATE:
    case pn::PhoneNumberUtil::SHARED_COST:
    case pn::PhoneNumberUtil::UAN:
    case pn::PhoneNumberUtil::VOICEMAIL: return "a service number (toll-free, premium, shared cost) cannot receive SMS";
    default: break;
  }
  util.Format(parsed, pn::PhoneNumberUtil::E164, &out);
  return std::nullopt;
}

}  // namespace budstikke::adapters::sms_http
