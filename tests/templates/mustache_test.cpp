#include "templates/mustache.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

namespace tpl = budstikke::templates;
namespace json = boost::json;

namespace {

tpl::compiled_template compile_ok(std::string_view source, const tpl::partial_sources& partials = {}) {
  auto r = tpl::compiled_template::compile(source, partials, "t");
  INFO((r ? std::string() : r.error().to_string()));
  REQUIRE(r.has_value());
  return *r;
}

std::string render(std::string_view source, std::string_view data, tpl::escape_mode escape = tpl::escape_mode::html,
                   const tpl::partial_sources& partials = {}) {
  std::string out;
  compile_ok(source, partials).render(json::parse(data), out, escape);
  return out;
}

tpl::compile_error compile_fails(std::string_view source, const tpl::partial_sources& partials = {}) {
  auto r = tpl::compiled_template::compile(source, partials, "welcome.html");
  REQUIRE_FALSE(r.has_value());
  return r.error();
}

}  // namespace

TEST_CASE("mustache compile errors carry line, column and reason", "[templates][mustache]") {
  SECTION("unclosed tag") {
    const auto e = compile_fails("Hello {{name");
    CHECK(e.template_name == "welcome.html");
    CHECK(e.line == 1);
    CHECK(e.column == 7);
    CHECK(e.reason.find("unclosed tag") != std::string::npos);
    CHECK(e.to_string().starts_with("welcome.html:1:7: unclosed tag"));
  }
  SECTION("unclosed section points at its opening tag") {
    const auto e = compile_fails("a\nbc {{#items}}\n{{name}}\n");
    CHECK(e.line == 2);
    CHECK(e.column == 4);
    CHECK(e.reason.find("unclosed section '{{#items}}'") != std::string::npos);
  }
  SECTION("mismatched closing tag points at the closing tag") {
    const auto e = compile_fails("{{#a}}\n  x{{/b}}");
    CHECK(e.line == 2);
    CHECK(e.column == 4);
    CHECK(e.reason.find("mismatched closing tag '{{/b}}'") != std::string::npos);
    CHECK(e.reason.find("'{{#a}}'") != std::string::npos);
  }
  SECTION("closing tag without a section") {
    const auto e = compile_fails("x {{/a}}");
    CHECK(e.column == 3);
    CHECK(e.reason.find("without an open section") != std::string::npos);
  }
  SECTION("bad delimiter changes") {
    CHECK(compile_fails("{{=<%=}}").reason.find("bad delimiter change") != std::string::npos);
    CHECK(compile_fails("{{=<% = %>=}}").reason.find("bad delimiter change") != std::string::npos);
    CHECK(compile_fails("{{= <% %> x =}}").reason.find("bad delimiter change") != std::string::npos);
  }
  SECTION("unclosed triple mustache and custom delimiters") {
    CHECK(compile_fails("{{{name}}").reason.find("no '}}}'") != std::string::npos);
    const auto e = compile_fails("{{=<% %>=}}\n<%name}}");
    CHECK(e.line == 2);
    CHECK(e.column == 1);
  }
  SECTION("empty names and names with blanks") {
    CHECK(compile_fails("{{ }}").reason.find("empty tag name") != std::string::npos);
    CHECK(compile_fails("{{#}}{{/}}").reason.find("empty tag name") != std::string::npos);
    CHECK(compile_fails("{{first name}}").reason.find("whitespace") != std::string::npos);
  }
  SECTION("errors in partials name the partial") {
    const auto e = compile_fails("{{>footer}}", {{"footer", "ok\n{{#x}}"}});
    CHECK(e.template_name == "footer");
    CHECK(e.line == 2);
    CHECK(e.column == 1);
  }
  SECTION("unclosed parent and block") {
    CHECK(compile_fails("{{<p}}{{$b}}{{/b}}").reason.find("unclosed section '{{<p}}'") != std::string::npos);
    CHECK(compile_fails("{{$b}}").reason.find("unclosed section") != std::string::npos);
  }
}

TEST_CASE("mustache escape modes", "[templates][mustache]") {
  constexpr auto data = R"({"v": "<a href=\"x\">Tom & Jerry's</a>"})";
  CHECK(render("{{v}}", data) == "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
  CHECK(render("{{v}}", data, tpl::escape_mode::none) == R"(<a href="x">Tom & Jerry's</a>)");
  CHECK(render("{{{v}}}|{{&v}}", data) == R"(<a href="x">Tom & Jerry's</a>|<a href="x">Tom & Jerry's</a>)");
  CHECK(render("æøå {{v}}", R"({"v": "blåbær"})") == "æøå blåbær");
}

TEST_CASE("mustache reports missing variables by dotted name", "[templates][mustache]") {
  const auto t = compile_ok("{{first_name}} {{member.id}} {{missing}} {{member.branch.name}}"
                            "{{#no_section}}{{x}}{{/no_section}}{{^nothing}}{{also_missing}}{{/nothing}}");
  std::vector<std::string> missing;
  const tpl::missing_variable_fn collect = [&](std::string_view name) { missing.emplace_back(name); };
  std::string out;
  t.render(json::parse(R"({"first_name": "Kari", "member": {"id": 7}})"), out, tpl::escape_mode::html, &collect);
  CHECK(out == "Kari 7  ");
  CHECK(missing == std::vector<std::string>{"missing", "member.branch.name", "also_missing"});

  // A null value is present, not missing; an empty std::function is ignored.
  missing.clear();
  out.clear();
  t.render(json::parse(R"({"first_name": null, "member": {"id": 1, "branch": {"name": "Oslo"}}, "missing": 0,
                           "also_missing": 1})"),
           out, tpl::escape_mode::html, &collect);
  CHECK(missing.empty());
  const tpl::missing_variable_fn empty;
  out.clear();
  t.render(json::parse("{}"), out, tpl::escape_mode::html, &empty);
  CHECK(out == "   ");
}

TEST_CASE("mustache dotted names, array indexes and number formatting", "[templates][mustache]") {
  constexpr auto data = R"({"member": {"name": {"first": "Ola"}, "dues": [{"amount": 1.5}, {"amount": 85}]},
                            "big": 18446744073709551615, "neg": -3, "whole": 2.0, "tiny": 1e-7, "yes": true})";
  CHECK(render("{{member.name.first}}", data) == "Ola");
  CHECK(render("{{member.dues.0.amount}} {{member.dues.1.amount}} {{member.dues.2.amount}}", data) == "1.5 85 ");
  CHECK(render("{{#member.name}}{{first}}{{/member.name}}", data) == "Ola");
  CHECK(render("{{#member}}{{name.first}} {{neg}}{{/member}}", data) == "Ola -3");
  CHECK(render("{{big}} {{neg}} {{whole}} {{tiny}} {{yes}}", data) == "18446744073709551615 -3 2 1e-07 true");
  CHECK(render("{{member}}{{member.dues}}", data) == "");
}

TEST_CASE("mustache section truthiness follows JavaScript", "[templates][mustache]") {
  constexpr auto t = "{{#v}}T{{/v}}{{^v}}F{{/v}}";
  CHECK(render(t, R"({"v": ""})") == "F");
  CHECK(render(t, R"({"v": 0})") == "F");
  CHECK(render(t, R"({"v": 0.0})") == "F");
  CHECK(render(t, R"({"v": null})") == "F");
  CHECK(render(t, R"({"v": []})") == "F");
  CHECK(render(t, R"({"v": "x"})") == "T");
  CHECK(render(t, R"({"v": 3})") == "T");
  CHECK(render(t, R"({"v": {}})") == "T");
  CHECK(render(t, R"({"v": [0, 0]})") == "TT");
}

TEST_CASE("mustache renders into a reused buffer", "[templates][mustache]") {
  const auto t = compile_ok("Hei {{name}}!\n");
  std::string out;
  out.reserve(256);
  const auto* storage = out.data();
  for (const auto* name : {"Kari", "Ola", "Åse"}) {
    out.clear();
    t.render(json::value{{"name", name}}, out);
    CHECK(out == std::string("Hei ") + name + "!\n");
    CHECK(out.data() == storage);  // no reallocation once the buffer is large enough
  }
  // render appends: the caller decides when to clear.
  t.render(json::value{{"name", "B"}}, out);
  CHECK(out == "Hei Åse!\nHei B!\n");
}

TEST_CASE("mustache variables lists top-level names", "[templates][mustache]") {
  const auto t = compile_ok("{{first_name}} {{member.id}} {{#items}}{{inner}}{{/items}}{{^vip}}{{fallback}}{{/vip}}"
                            "{{>footer}}{{>*dyn}}{{! comment }}{{.}}",
                            {{"footer", "{{branch.name}}{{>footer}}"}, {"unused", "{{never}}"}});
  CHECK(t.variables() == std::vector<std::string>{"branch", "dyn", "fallback", "first_name", "items", "member", "vip"});
  CHECK(tpl::compiled_template{}.variables().empty());
}

TEST_CASE("mustache templates are values that render concurrently", "[templates][mustache]") {
  tpl::compiled_template copy;
  {
    const auto original = compile_ok("{{#list}}<{{>item}}>{{/list}}", {{"item", "{{name}}"}});
    copy = original;
  }
  const auto data = json::parse(R"({"list": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})");
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      std::string out;
      for (int i = 0; i < 2000; ++i) {
        out.clear();
        copy.render(data, out);
      }
      result = out;
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) CHECK(r == "<a><b><c>");

  std::string out = "kept";
  tpl::compiled_template{}.render(data, out);
  CHECK(out == "kept");
}

TEST_CASE("mustache stops runaway recursion", "[templates][mustache]") {
  const auto out = render("{{>loop}}", "{}", tpl::escape_mode::html, {{"loop", "x{{>loop}}"}});
  CHECK(out == std::string(100, 'x'));
  CHECK(render("{{<p}}{{$a}}[{{$a}}{{/a}}]{{/a}}{{/p}}", "{}", tpl::escape_mode::html, {{"p", "{{$a}}{{/a}}"}})
            .starts_with("[["));
}

TEST_CASE("mustache partials, parents and dynamic names in e-mail shaped templates", "[templates][mustache]") {
  const tpl::partial_sources partials = {
      {"layout", "<html>\n  <body>\n    {{$content}}\n    default\n    {{/content}}\n    {{>footer}}\n  </body>\n</html>\n"},
      {"footer", "<p>{{branch}}</p>\n<p>Avmeld: {{unsubscribe_url}}</p>\n"},
      {"greeting_nb", "Hei {{name}}"},
      {"greeting_en", "Hi {{name}}"},
  };
  const auto t = compile_ok("{{<layout}}\n{{$content}}\n<h1>{{>*greeting}}</h1>\n{{/content}}\n{{/layout}}\n", partials);
  std::string out;
  t.render(json::parse(R"({"greeting": "greeting_nb", "name": "Kari", "branch": "Oslo",
                           "unsubscribe_url": "https://x/u?a=1&b=2"})"),
           out);
  CHECK(out ==
        "<html>\n  <body>\n    <h1>Hei Kari</h1>\n    <p>Oslo</p>\n    <p>Avmeld: https://x/u?a=1&amp;b=2</p>\n"
        "  </body>\n</html>\n");
}
