// The Lua scripts as the library embeds them: each file of queue/scripts, byte for byte, with
// its SHA1.
#include <filesystem>
#include <set>

#include <openssl/sha.h>

#include "queue/consent.hpp"
#include "queue/schema.hpp"
#include "queue/script.hpp"
#include "tests/support/servers.hpp"

using namespace budstikke;
using namespace budstikke::testing;

namespace {

std::string sha1_hex(std::string_view bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  std::string hex;
  for (unsigned char b : digest) {
    constexpr char digits[] = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  return hex;
}

}  // namespace

TEST_CASE("scripts: every file of queue/scripts is embedded byte for byte, with its SHA1") {
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(fs::path(source_dir()) / "queue" / "scripts"))
    if (e.path().extension() == ".lua") files.insert(e.path().stem().string());
  std::set<std::string> embedded;
  for (const queue::script* s : queue::all_scripts()) {
    INFO(s->name);
    embedded.insert(std::string(s->name));
    CHECK(s->source == slurp(fs::path(source_dir()) / "queue" / "scripts" / (std::string(s->name) + ".lua")));
    CHECK(s->sha1 == sha1_hex(s->source));
  }
  CHECK(embedded == files);  // a .lua file not listed in queue/CMakeLists.txt would be missing
  CHECK(embedded.size() == 7);
  CHECK(queue::record_outcomes_script.name == "record_outcomes");
  CHECK(queue::withdraw_consent_script.name == "withdraw_consent");
}
