// Phone numbers as members typed them into a portal ("412 34 567", "0047 412 34 567") checked and
// turned into E.164 ("+4741234567") with libphonenumber, before anything is sent.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace budstikke::adapters::sms_http {

// True when libphonenumber knows the region code ("NO", "SE").
bool is_known_region(std::string_view region);

// Parses `number` (national, read in `default_region`, or international) and writes its E.164
// form to `out`. The reason when it is not a number an SMS can go to: unparseable, not a valid
// number, or a fixed-line/premium/toll-free/shared-cost/voicemail number. Thread-safe, no
// exceptions; the reason never contains the number.
std::optional<std::string_view> normalise_phone(std::string_view number, std::string_view default_region,
                                                std::string& out);

}  // namespace budstikke::adapters::sms_http
