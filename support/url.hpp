// URLs as messages may show them: a URL's userinfo (scheme://user:password@host) carries a
// password, and no error, log line or metric label may repeat it.
#pragma once

#include <string>
#include <string_view>

namespace budstikke::support {

// `url` with the password of its userinfo replaced by `***` (a userinfo without `:` is taken
// for a password, as Redis URLs read it). The userinfo ends at the last `@`, as parse_redis_url
// reads it: a password holding `/`, `?` or `#` is still hidden. Works on malformed URLs too.
std::string redact_url(std::string_view url);

// `url` without its userinfo, for names that should not carry a user name either.
std::string without_userinfo(std::string_view url);

}  // namespace budstikke::support
