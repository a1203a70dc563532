// docs/config.md's tables, written from the key tables (config/keys.hpp) with the defaults of
// config{}: `ninja -C build config_docs` rewrites them, and a test fails while the committed
// docs differ.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace budstikke {

struct reference_row {
  std::string key;  // "`window`"; a row that stands for several keys names each
  std::string default_value;
  std::string bounds;
  std::string meaning;  // an environment variable's effect
};

// "environment", then each section of the key tables, in docs/config.md's order.
std::vector<std::string_view> reference_sections();
std::vector<reference_row> reference_rows(std::string_view section);
// The section's table in Markdown, one line per row.
std::string reference_table(std::string_view section);
// The Markdown with the table after each `<!-- table: SECTION ... -->` line written anew.
// std::runtime_error when a section has no such line, or one names no section.
std::string with_reference_tables(std::string_view markdown);

}  // namespace budstikke
