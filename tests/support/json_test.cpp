#include <cmath>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "support/json.hpp"

using namespace budstikke::support;
namespace json = boost::json;

TEST_CASE("json: a measurement keeps the places it had, and reads back as that number") {
  CHECK(rounded(1.23456, 3).as_double() == 1.235);
  CHECK(rounded(0.0004, 3).as_double() == 0.0);
  CHECK(rounded(2.5, 1).as_double() == 2.5);
  CHECK(rounded(12345.678, 0).as_int64() == 12346);  // 0 places: a whole number, as "{:.0f}" wrote it
  CHECK(rounded(-0.6, 0).as_int64() == -1);
  CHECK(rounded(0.12345678, 4).as_double() == 0.1235);
  CHECK(json::parse(json::serialize(rounded(1234.56789, 1))).as_double() == 1234.6);
  CHECK(std::isnan(rounded(NAN, 3).as_double()));
}

TEST_CASE("json: one object a line, fields in the order they were set, strings escaped") {
  json::object o;
  o["ts"] = "2026-12-01T05:13:36.123Z";
  o["msg"] = "quote \" backslash \\ newline \n tab \t nul " + std::string(1, '\0') + " Åse";
  o["count"] = 42;
  o["total"] = nullptr;
  o["ok"] = true;
  const auto line = json_line(o);
  CHECK(line ==
        "{\"ts\":\"2026-12-01T05:13:36.123Z\",\"msg\":\"quote \\\" backslash \\\\ newline \\n tab \\t nul \\u0000 "
        "Åse\",\"count\":42,\"total\":null,\"ok\":true}\n");
  CHECK(json::parse(line).as_object() == o);
}

TEST_CASE("json: measurements are written as people write numbers, and read back the same") {
  json::object o;
  o["seconds"] = rounded(0.2351, 3);
  o["msg_per_s"] = rounded(47012.3456, 1);
  o["ratio"] = 1.0;
  o["tiny"] = 1.5e-7;
  o["huge"] = 2e30;
  o["nan"] = NAN;
  o["list"] = json::array{0.5, 3, "x"};
  const auto line = json_line(o);
  CHECK(line == "{\"seconds\":0.235,\"msg_per_s\":47012.3,\"ratio\":1,\"tiny\":1.5e-07,\"huge\":2e+30,"
                "\"nan\":null,\"list\":[0.5,3,\"x\"]}\n");
  auto back = json::parse(line).as_object();
  CHECK(back.at("seconds").to_number<double>() == 0.235);
  CHECK(back.at("tiny").to_number<double>() == 1.5e-7);
  CHECK(back.at("nan").is_null());
}
