// Bad recipient files and templates: refused with file, line and reason; nothing half-enqueued.
#include "tests/integration/e2e.hpp"

using namespace budstikke::testing;

namespace {

struct fixture {
  temp_dir dir;
  redis_server redis = start_redis(dir);
  fs::path config = write_config(dir, redis, 2525);
  std::string templates = source_dir() + "/deploy/templates/newsletter";

  cli_result enqueue(const std::string& id, const fs::path& recipients, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"enqueue", "--config", config.string(), "--campaign", id, "--template", templates,
                                  "--recipients", recipients.string(), "--from", "nyheter@forbundet.example"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_cli(dir, args);
  }
};

}  // namespace

TEST_CASE("e2e: a recipient file with bad lines is refused, each line named") {
  fixture f;
  auto members = write_members(f.dir, 10, {{2, "{\"to\": \"a@b.example\""},
                                           {4, "{\"id\": 7}"},
                                           {5, "{\"to\": \"ikke-en-adresse\"}"},
                                           {7, "{\"to\": \"medlem0@avd0.example\"}"},
                                           {8, "[1,2]"}});
  auto r = f.enqueue("bad", members);
  INFO(r.output);
  CHECK(r.code == 2);
  auto file = members.string();
  CHECK(r.output.find(file + ":3: not valid JSON") != std::string::npos);
  CHECK(r.output.find(file + ":5: 'to' is missing") != std::string::npos);
  CHECK(r.output.find(file + ":6: address has no @") != std::string::npos);
  CHECK(r.output.find(file + ":8: duplicate recipient") != std::string::npos);
  CHECK(r.output.find(file + ":9: not a JSON object") != std::string::npos);
  CHECK(r.output.find("5 of 10 recipients have problems; nothing was enqueued") != std::string::npos);

  // Nothing was written.
  auto st = run_cli(f.dir, {"status", "--config", f.config.string(), "--campaign", "bad"});
  CHECK(st.code == 2);
  CHECK(st.output.find("does not exist") != std::string::npos);

  // With --skip-invalid the good lines go in and the rest is still reported.
  auto skip = f.enqueue("bad", members, {"--skip-invalid"});
  INFO(skip.output);
  CHECK(skip.code == 0);
  CHECK(skip.output.find("enqueued campaign bad: 5 recipients (5 lines skipped") != std::string::npos);
  auto s = campaign_status(f.dir, f.config, "bad");
  CHECK(field(s, "total") == 5);
  CHECK(field(s, "pending") == 5);
}

TEST_CASE("e2e: oversized fields and quoted local parts that need quoting are refused, each line named") {
  fixture f;
  auto big = std::string(64 * 1024, 'x');
  auto members = write_members(f.dir, 6, {{1, "{\"to\": \"" + std::string(330, 'k') + "@avd1.example\"}"},
                                          {2, "{\"to\": \"m2@avd1.example\", \"id\": \"" + std::string(257, 'M') + "\"}"},
                                          {3, "{\"to\": \"m3@avd1.example\", \"note\": \"" + big + "\"}"},
                                          {4, "{\"to\": \"\\\"kari nordmann\\\"@avd1.example\"}"}});
  auto r = f.enqueue("sizes", members);
  INFO(r.output);
  CHECK(r.code == 2);
  auto file = members.string();
  CHECK(r.output.find(file + ":2: 'to' longer than 320 bytes") != std::string::npos);
  CHECK(r.output.find(file + ":3: 'id' (member id) longer than 256 bytes") != std::string::npos);
  CHECK(r.output.find(file + ":4: template data larger than 64 KiB") != std::string::npos);
  CHECK(r.output.find(file + ":5: quoted local part with characters that need quoting") != std::string::npos);
  CHECK(r.output.find("4 of 6 recipients have problems; nothing was enqueued") != std::string::npos);
}

TEST_CASE("e2e: CSV recipients with quoted fields are read and a bad CSV row is named") {
  fixture f;
  auto csv = f.dir / "members.csv";
  {
    std::ofstream out(csv);
    out << "to,id,name,branch\r\n"
        << "kari@avd1.example,M1,\"Nordmann, Kari\",Bodø\r\n"
        << "ola@avd1.example,M2,\"Ola \"\"Sjefen\"\" Aas\",\"Førde\nsentrum\"\r\n"
        << "per@avd1.example,M3,Per\r\n";
  }
  auto r = f.enqueue("csv", csv);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find(csv.string() + ":5: 3 fields, the header has 4") != std::string::npos);

  {
    std::ofstream out(csv);
    out << "to,id,name,branch\n"
        << "kari@avd1.example,M1,\"Nordmann, Kari\",Bodø\n"
        << "ola@avd1.example,M2,\"Ola \"\"Sjefen\"\" Aas\",\"Førde\nsentrum\"\n";
  }
  auto ok = f.enqueue("csv", csv);
  INFO(ok.output);
  CHECK(ok.code == 0);
  CHECK(field(campaign_status(f.dir, f.config, "csv"), "total") == 2);
}

TEST_CASE("e2e: a template that does not compile is refused with file, line and column") {
  fixture f;
  auto tpl = f.dir / "tpl";
  fs::create_directories(tpl);
  std::ofstream(tpl / "subject.mustache") << "Hei";
  std::ofstream(tpl / "text.mustache") << "Hei {{name}}\n{{#items}}\n  {{.}}\n";
  auto members = write_members(f.dir, 3);
  std::vector<std::string> args{"enqueue", "--config", f.config.string(), "--campaign", "tpl", "--template",
                                tpl.string(), "--recipients", members.string(), "--from", "a@forbundet.example"};
  auto r = run_cli(f.dir, args);
  INFO(r.output);
  CHECK(r.code == 2);
  CHECK(r.output.find((tpl / "text.mustache").string() + ":2:") != std::string::npos);
  CHECK(r.output.find("items") != std::string::npos);
}

TEST_CASE("e2e: the same campaign id cannot be enqueued twice") {
  fixture f;
  auto members = write_members(f.dir, 3);
  REQUIRE(f.enqueue("once", members).code == 0);
  auto again = f.enqueue("once", members);
  CHECK(again.code == 1);
  CHECK(again.output.find("campaign 'once' already exists") != std::string::npos);
  CHECK(field(campaign_status(f.dir, f.config, "once"), "total") == 3);
}
