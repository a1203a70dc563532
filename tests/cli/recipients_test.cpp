#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "cli/recipients_file.hpp"

using namespace budstikke::cli;

TEST_CASE("engine: a JSON Lines line gives to, id and the other fields as data") {
  recipient_record r;
  REQUIRE_FALSE(parse_jsonl_line(R"({"to":"kari@avd1.example","id":42,"name":"Kari Ødegård","n":[1]})", r));
  CHECK(r.to == "kari@avd1.example");
  CHECK(r.member == "42");
  CHECK(boost::json::parse(r.data_json) == boost::json::parse(R"({"name":"Kari Ødegård","n":[1]})"));
}

TEST_CASE("engine: bad JSON Lines lines get a reason") {
  recipient_record r;
  CHECK(parse_jsonl_line("{", r)->rfind("not valid JSON", 0) == 0);
  CHECK(*parse_jsonl_line("[]", r) == "not a JSON object");
  CHECK(*parse_jsonl_line(R"({"id":"1"})", r) == "'to' is missing");
  CHECK(*parse_jsonl_line(R"({"to":5})", r) == "'to' is not a string");
  CHECK(*parse_jsonl_line(R"({"to":""})", r) == "'to' is empty");
  CHECK(*parse_jsonl_line(R"({"to":"a@b.no","id":1.5})", r) == "'id' is neither a string nor a whole number");
  CHECK(*parse_jsonl_line("{\"to\":\"\xff\"}", r) == "not valid UTF-8");
}

TEST_CASE("engine: the reader numbers lines, skips blank ones and strips a BOM") {
  auto reader = recipients_reader::from_text("\xEF\xBB\xBF{\"to\":\"a@b.no\"}\n\n  \n{oops}\r\n{\"to\":\"c@d.no\"}\n",
                                             recipients_format::jsonl);
  recipient_record r;
  std::optional<line_problem> p;
  REQUIRE(reader->next(r, p));
  CHECK_FALSE(p);
  CHECK(r.line == 1);
  REQUIRE(reader->next(r, p));
  REQUIRE(p);
  CHECK(p->line == 4);
  REQUIRE(reader->next(r, p));
  CHECK_FALSE(p);
  CHECK(r.line == 5);
  CHECK(r.to == "c@d.no");
  CHECK_FALSE(reader->next(r, p));
}

TEST_CASE("engine: CSV per RFC 4180 — quotes, doubled quotes, line breaks inside quotes") {
  auto reader = recipients_reader::from_text(
      "to,name,id\r\na@b.no,\"Aas, Åse\",7\r\nc@d.no,\"Per \"\"P\"\" \nHansen\",8\r\ne@f.no,x\r\ng@h.no,\"a\"b,9\r\n",
      recipients_format::csv);
  recipient_record r;
  std::optional<line_problem> p;
  REQUIRE(reader->next(r, p));
  CHECK_FALSE(p);
  CHECK(r.line == 2);
  CHECK(r.member == "7");
  CHECK(r.data_json == R"({"name":"Aas, Åse"})");
  REQUIRE(reader->next(r, p));
  CHECK_FALSE(p);
  CHECK(r.line == 3);
  CHECK(r.data_json == R"({"name":"Per \"P\" \r\nHansen"})");
  REQUIRE(reader->next(r, p));
  REQUIRE(p);
  CHECK(p->line == 5);
  CHECK(p->reason == "2 fields, the header has 3");
  REQUIRE(reader->next(r, p));
  REQUIRE(p);
  CHECK(p->reason == "text after a closing quote in field 2");
  CHECK_FALSE(reader->next(r, p));
}

TEST_CASE("engine: a CSV header without 'to' or with a repeated column is refused") {
  CHECK_THROWS_WITH(recipients_reader::from_text("name,id\nx,1\n", recipients_format::csv), Catch::Contains("no 'to' column"));
  CHECK_THROWS_WITH(recipients_reader::from_text("to,to\nx,1\n", recipients_format::csv), Catch::Contains("'to' appears twice"));
  CHECK_THROWS_WITH(recipients_reader::from_text("", recipients_format::csv), Catch::Contains("header row is required"));
  CHECK_THROWS_WITH(recipients_reader::from_text("to,\"x\n", recipients_format::csv), Catch::Contains("not closed"));
}
