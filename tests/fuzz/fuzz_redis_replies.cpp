// RESP from a hostile or broken server, fed in chunks to the reply parser, and every reply given
// to every typed parser the engine uses: errors or empty results, never a crash, a hang, or a
// result of the wrong size. The first byte sets the chunk size, the second the records expected.
#include <cstdint>
#include <string>
#include <string_view>

#include "queue/consent.hpp"
#include "queue/consumer.hpp"
#include "queue/dead_letters.hpp"
#include "queue/rate_limit.hpp"
#include "queue/resp.hpp"

using namespace budstikke::queue;

namespace {

void every_parser(const redisReply* r, std::size_t n) {
  (void)error_of(r);
  (void)parse_pending_of(r);
  if (parse_marks(r, n).size() != n) __builtin_trap();
  (void)parse_work_left(r);
  (void)parse_consumers(r);
  (void)parse_alive(r);
  (void)parse_ids(r);
  (void)parse_campaign(r, "c1");
  (void)parse_state(r);
  if (auto rec = parse_record_result(r, n); rec && rec->counted.size() != n) __builtin_trap();
  (void)parse_moved_retries(r);
  std::size_t seen = 0;
  for_each_entry(r, [&](std::string_view, const stream_entry& e) {
    if (!e.well_formed && !e.to.empty()) __builtin_trap();
    ++seen;
  });
  for_each_entry_in(r, [&](const stream_entry&) { ++seen; });
  (void)lookup_problem(r, r, true, true);
  (void)lookup_problem(nullptr, r, false, false);
  (void)parse_token_grant(r);
  if (auto letters = parse_dead_letters(r))
    for (const auto& l : *letters) (void)l.get("reason");
  (void)parse_campaign_summary(r);
  (void)parse_requeued(r);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  const std::size_t records = data[1] % 8;
  std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  reply_parser parser;
  while (!in.empty()) {
    auto part = in.substr(0, chunk);
    in.remove_prefix(part.size());
    if (!parser.feed(part.data(), part.size())) return 0;  // a protocol error drops the connection
    for (;;) {
      bool protocol_error = false;
      auto r = parser.next(protocol_error);
      if (protocol_error) return 0;
      if (!r) break;
      every_parser(r.get(), records);
    }
  }
  return 0;
}
