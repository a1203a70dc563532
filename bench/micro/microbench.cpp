// Per-message cost on one core: a personalised ~4 KB newsletter rendered into a complete MIME
// message (with List-Unsubscribe and its HMAC token), and a 2-segment SMS rendered and analysed.
//
//   build/bench/micro/budstikke_microbench
#include <string>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "engine/renderer.hpp"

using namespace budstikke;

namespace {

std::string paragraph(int i) {
  return fmt::format(
      "Punkt {}: Forhandlingene om lønn og pensjon for medlemmene i {{{{branch}}}} er avsluttet, og "
      "resultatet gjelder fra 1. mai. Les mer om hva det betyr for deg på Min side.\n",
      i);
}

queue::campaign_definition newsletter() {
  queue::campaign_definition def;
  def.id = "tariff-2026";
  def.category = "newsletter";
  def.from_address = "nyheter@forbundet.example";
  def.from_name = "Forbundet Øst";
  std::string text = "Hei {{name}},\n\nMedlemsnummer: {{id}}\n\n";
  std::string html = "<!doctype html><html lang=\"nb\"><body><h1>Tariffoppgjøret er klart</h1><p>Hei {{name}},</p>\n";
  for (int i = 1; i <= 9; ++i) {
    text += paragraph(i);
    html += "<p>" + paragraph(i) + "</p>\n";
  }
  text += "{{#items}} * {{.}}\n{{/items}}{{^dues_paid}}Kontingenten din er ikke betalt.\n{{/dues_paid}}{{> footer}}";
  html += "<ul>{{#items}}<li>{{.}}</li>{{/items}}</ul>{{^dues_paid}}<p>Kontingenten din er ikke betalt.</p>"
          "{{/dues_paid}}<p><a href=\"{{unsubscribe_url}}\">Meld deg av</a></p></body></html>\n";
  def.templates = {{"subject", "Nytt fra {{branch}}: tariffoppgjøret er klart"}, {"text", text}, {"html", html}};
  def.partials = {{"footer", "\nMed vennlig hilsen\n{{branch}}\nAvmelding: {{unsubscribe_url}}\n"}};
  return def;
}

config bench_config() {
  config cfg;
  cfg.email.unsubscribe_url = "https://min.forbundet.example/avmeld?t={token}";
  cfg.email.unsubscribe_secret = "a-secret-of-enough-bytes-for-hmac";
  return cfg;
}

void newsletter_render_and_mime(benchmark::State& state) {
  auto compiled = engine::campaign_renderer::compile(newsletter(), bench_config());
  if (!compiled) {
    state.SkipWithError(compiled.error().message.c_str());
    return;
  }
  const auto& r = *compiled;
  const std::string data =
      R"({"name":"Åse Ødegård","branch":"Tromsø","dues_paid":false,"items":["Lønn","Pensjon","Arbeidstid"]})";
  adapters::delivery d;
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto failure = r->prepare_email("1700000000000-0", "aase.odegard@avd1.example", "M1042", data, d);
    benchmark::DoNotOptimize(failure);
    bytes = d.data.size();
  }
  state.counters["message_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(newsletter_render_and_mime);

void sms_two_segments_render_and_analyse(benchmark::State& state) {
  queue::campaign_definition def;
  def.id = "sms-2026";
  def.kind = queue::channel::sms;
  def.templates = {{"sms",
                    "Hei {{name}}! Tariffoppgjøret i {{branch}} er klart: lønnstillegget er {{raise}} fra 1. mai, "
                    "og pensjonen er sikret. Stem over resultatet på Min side innen {{date}}. «Svar JA» – eller "
                    "les mer på forbundet.example/tariff. Hilsen {{branch}}\n"}};
  auto compiled = engine::campaign_renderer::compile(def, config{});
  if (!compiled) {
    state.SkipWithError(compiled.error().message.c_str());
    return;
  }
  const auto& r = *compiled;
  const std::string data = R"({"name":"Åse","branch":"Avdeling Tromsø","raise":"4,2 %","date":"12. mai"})";
  templates::sms::message m;
  for (auto _ : state) {
    auto failure = r->render_sms("+4799999999", "M1042", data, m);
    benchmark::DoNotOptimize(failure);
  }
  state.counters["segments"] = static_cast<double>(m.segments());
  state.counters["septets"] = static_cast<double>(m.units());
}
BENCHMARK(sms_two_segments_render_and_analyse);

}  // namespace

BENCHMARK_MAIN();
