// `budstikke bench`: a reproducible end-to-end load run on one machine. It starts (or targets) a
// Redis and an SMTP sink (or, with --channel sms, the project's SMS gateway sink), enqueues N synthetic members, runs the engine as a child process until
// idle and reports msg/s, engine CPU per message and peak RSS (from wait4, the child alone).
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace budstikke::bench {

struct bench_options {
  std::uint64_t recipients = 100000;
  int workers = 0;               // 0 = one per core
  std::size_t window = 2000;
  std::size_t connections = 8;   // SMTP connections per shard
  std::string sink = "own";      // own | postfix
  std::string relay;             // HOST:PORT of an existing relay instead of a started sink
  std::string redis_url;         // an existing Redis instead of a started one
  std::string channel = "email";  // email | sms (the project's SMS sink, Kannel kind)
  double sms_429_share = 0;       // sms: share of requests the sink answers 429 Retry-After: 1
  std::size_t sms_concurrency = 32;  // sms: requests in flight per shard
  double global_limit = 0;        // limits.global (messages per second); 0 = no rate limit
  bool json = false;
  bool keep = false;             // keep the work directory (logs, config)
  bool tls = false;              // own sink with STARTTLS (a throwaway CA), engine verifying it
  std::string plot;              // PNG: throughput and in-flight over time (gnuplot)
  double transient_share = 0;    // own SMTP sink faults: share answered 451
  double drop_after_dot_share = 0;  // ... share whose connection drops after the final dot
  int reply_delay_ms = 0;        // ... delay of every reply (a slow relay)
  // granted: a newsletter requiring consent, a grant recorded for every member (all read, all found);
  // lookup: a tariff message, consent read but none recorded; off: a category whose consent is not read.
  std::string consent = "lookup";
  bool events = true;            // false: engine.events_max_len 0
};

void add_bench_options(CLI::App* cmd, bench_options& opt);
int run_bench(const bench_options& opt);

}  // namespace budstikke::bench
