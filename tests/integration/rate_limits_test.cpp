// Rate limits end to end: the engine (two shards sharing the buckets through Redis) against the
// project's SMTP and SMS sinks, arrival times read from the sink's maildir (file times) or by
// sampling the SMS sink's store. Real clocks: the bounds are the rate with generous slack.
#include <algorithm>
#include <cctype>
#include <sys/stat.h>
#include <thread>

#include "tests/integration/sms.hpp"

using namespace budstikke::testing;
using clock_type = std::chrono::steady_clock;

namespace {

// Seconds (since the epoch) at which each message reached the sink, by recipient (lower case).
std::map<std::string, std::vector<double>> arrival_times(const fs::path& maildir) {
  std::map<std::string, std::vector<double>> times;
  std::ifstream in(maildir / "recipients.log");
  std::string line;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    if (tab == std::string::npos) continue;
    struct stat st{};
    if (::stat((maildir / "new" / line.substr(0, tab)).c_str(), &st) != 0) continue;
    auto to = line.substr(tab + 1);
    for (auto& c : to) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    times[to].push_back(static_cast<double>(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1e9);
  }
  return times;
}

std::vector<double> all_of(const std::map<std::string, std::vector<double>>& times, const std::string& domain = "") {
  std::vector<double> out;
  for (auto& [to, ts] : times)
    if (domain.empty() || to.ends_with(domain)) out.insert(out.end(), ts.begin(), ts.end());
  std::sort(out.begin(), out.end());
  return out;
}

// The most arrivals in any window of `seconds` (sorted times).
int most_in_window(const std::vector<double>& t, double seconds) {
  int best = 0;
  for (std::size_t i = 0, j = 0; j < t.size(); ++j) {
    while (t[j] - t[i] >= seconds) ++i;
    best = std::max(best, static_cast<int>(j - i + 1));
  }
  return best;
}

void enqueue(const temp_dir& dir, const fs::path& config, const std::string& id, const fs::path& members,
             const std::string& tenant = "default") {
  auto enq = run_cli(dir, {"enqueue", "--config", config.string(), "--campaign", id, "--template",
                           source_dir() + "/deploy/templates/newsletter", "--recipients", members.string(), "--from",
                           "nyheter@forbundet.example", "--tenant", tenant});
  INFO(enq.output);
  REQUIRE(enq.code == 0);
}

double run_timed(const temp_dir& dir, const fs::path& config) {
  auto start = clock_type::now();
  auto run = run_cli(dir, {"run", "--config", config.string(), "--until-idle"}, std::chrono::seconds(60));
  INFO(run.output);
  REQUIRE(run.code == 0);
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

}  // namespace

TEST_CASE("e2e: a global limit of 200/s holds 600 messages from two shards to about 3 seconds") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  std::ofstream(config, std::ios::app) << "limits:\n  global: 200\n";
  enqueue(dir, config, "global", write_members(dir, 600));

  double took = run_timed(dir, config);
  auto s = campaign_status(dir, config, "global");
  require_adds_up(s, 600);
  CHECK(field(s, "sent") == 600);
  auto t = all_of(arrival_times(maildir));
  REQUIRE(t.size() == 600);
  INFO("run " << took << " s, arrivals over " << t.back() - t.front() << " s, most in 1 s "
              << most_in_window(t, 1.0) << ", in 0.5 s " << most_in_window(t, 0.5));
  CHECK(took >= 2.5);
  CHECK(t.back() - t.front() >= 2.5);   // 600 at 200/s: 3 s less the burst
  CHECK(t.back() - t.front() <= 6.0);
  CHECK(most_in_window(t, 1.0) <= 230);  // 200 + 4 of burst, plus the jitter of a real clock
  CHECK(most_in_window(t, 0.5) <= 125);
}

TEST_CASE("e2e: a domain limit slows that domain's recipients only") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  std::ofstream(config, std::ios::app) << "limits:\n  domains:\n    treg.example: 20\n";
  // Every 10th of 600 members is at treg.example or a subdomain of it: 60 at 20/s take about 3 s.
  std::map<int, std::string> slow;
  for (int i = 0; i < 600; i += 10)
    slow[i] = "{\"to\":\"medlem" + std::to_string(i) + (i % 20 ? "@post.treg.example" : "@Treg.example") +
              "\",\"id\":\"M" + std::to_string(i) + "\",\"name\":\"Kari\"}";
  enqueue(dir, config, "domains", write_members(dir, 600, slow));

  run_timed(dir, config);
  auto s = campaign_status(dir, config, "domains");
  require_adds_up(s, 600);
  CHECK(field(s, "sent") == 600);
  auto times = arrival_times(maildir);
  auto all = all_of(times), treg = all_of(times, "treg.example");
  REQUIRE(treg.size() == 60);
  REQUIRE(all.size() == 600);
  std::vector<double> rest;
  for (auto& [to, ts] : times)
    if (!to.ends_with("treg.example")) rest.insert(rest.end(), ts.begin(), ts.end());
  std::sort(rest.begin(), rest.end());
  REQUIRE(rest.size() == 540);
  INFO("treg over " << treg.back() - treg.front() << " s, most in 1 s " << most_in_window(treg, 1.0)
                    << "; the rest over " << rest.back() - all.front() << " s");
  CHECK(treg.back() - treg.front() >= 2.5);
  CHECK(most_in_window(treg, 1.0) <= 25);
  CHECK(rest.back() - all.front() < 1.5);  // the others do not wait for treg.example
}

TEST_CASE("e2e: a tenant limit holds that tenant's campaign, not another tenant's") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto maildir = dir / "mail";
  auto sink = start_own_sink(dir, {"--maildir", maildir.string()});
  auto config = write_config(dir, redis, sink.port);
  std::ofstream(config, std::ios::app) << "limits:\n  tenants:\n    avd-ost: 30\n";
  enqueue(dir, config, "ost", write_members(dir, 90), "avd-ost");
  // The other tenant's members under other addresses.
  std::map<int, std::string> vest;
  for (int i = 0; i < 400; ++i)
    vest[i] = "{\"to\":\"vest" + std::to_string(i) + "@vest.example\",\"id\":\"V" + std::to_string(i) + "\"}";
  enqueue(dir, config, "vest", write_members(dir, 400, vest), "avd-vest");

  run_timed(dir, config);
  require_adds_up(campaign_status(dir, config, "ost"), 90);
  require_adds_up(campaign_status(dir, config, "vest"), 400);
  auto times = arrival_times(maildir);
  auto vest_t = all_of(times, "@vest.example"), all = all_of(times);
  std::vector<double> ost;
  for (auto& [to, ts] : times)
    if (!to.ends_with("@vest.example")) ost.insert(ost.end(), ts.begin(), ts.end());
  std::sort(ost.begin(), ost.end());
  REQUIRE(ost.size() == 90);
  REQUIRE(vest_t.size() == 400);
  INFO("ost over " << ost.back() - ost.front() << " s, most in 1 s " << most_in_window(ost, 1.0)
                   << "; vest done after " << vest_t.back() - all.front() << " s");
  CHECK(ost.back() - ost.front() >= 2.5);  // 90 at 30/s
  CHECK(most_in_window(ost, 1.0) <= 36);
  CHECK(vest_t.back() - all.front() < 1.5);
}

TEST_CASE("e2e: an SMS gateway limit of 20/s") {
  temp_dir dir;
  auto redis = start_redis(dir);
  auto gateway = start_sms_sink(dir);
  auto config = write_sms_config(dir, redis, "http://127.0.0.1:" + std::to_string(gateway.port) + "/cgi-bin/sendsms");
  std::ofstream(config, std::ios::app) << "limits:\n  sms: 20\n  global: 1000\n";
  enqueue_sms(dir, config, "sms-limit", write_sms_members(dir, 60));

  // Sample how many messages the gateway has stored, every 50 ms, while the engine runs.
  auto engine = budstikke::support::child_process::spawn(
      {budstikke_bin(), "run", "--config", config.string(), "--until-idle"}, (dir / "engine.log").string());
  std::vector<std::pair<double, int>> samples;
  auto start = clock_type::now();
  std::optional<budstikke::support::exit_status> status;
  while (!(status = engine.wait_for(std::chrono::milliseconds(50))) && clock_type::now() - start < std::chrono::seconds(30)) {
    int lines = 0;
    std::ifstream in(dir / "sms.jsonl");
    for (std::string l; std::getline(in, l);) ++lines;
    samples.emplace_back(std::chrono::duration<double>(clock_type::now() - start).count(), lines);
  }
  REQUIRE(status);
  CHECK(status->code == 0);
  double took = std::chrono::duration<double>(clock_type::now() - start).count();
  auto s = campaign_status(dir, config, "sms-limit");
  require_adds_up(s, 60);
  CHECK(field(s, "sent") == 60);
  auto seen = sms_arrivals(dir);
  CHECK(seen.size() == 60);
  int most = 0;  // the most stored within any second, from the samples
  for (std::size_t i = 0; i < samples.size(); ++i)
    for (std::size_t j = i; j < samples.size() && samples[j].first - samples[i].first <= 1.0; ++j)
      most = std::max(most, samples[j].second - samples[i].second);
  INFO("run " << took << " s, most in a second " << most);
  CHECK(took >= 2.5);  // 60 at 20/s
  CHECK(most <= 25);
}
