#include "cli/recipients_file.hpp"

#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "templates/utf8.hpp"

namespace budstikke::cli {
namespace json = boost::json;
namespace {

constexpr std::size_t max_line_bytes = 1 << 20;

std::string_view strip_bom(std::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  return s;
}

// One source of physical lines, from a file or a string, with line numbers.
class line_source {
 public:
  explicit line_source(std::unique_ptr<std::istream> in) : in_(std::move(in)) {}
  bool next(std::string& line) {
    if (!std::getline(*in_, line)) return false;
    ++number_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number_ == 1) line = std::string(strip_bom(line));
    return true;
  }
  std::size_t number() const { return number_; }

 private:
  std::unique_ptr<std::istream> in_;
  std::size_t number_ = 0;
};

class jsonl_reader final : public recipients_reader {
 public:
  explicit jsonl_reader(std::unique_ptr<std::istream> in) : src_(std::move(in)) {}
  bool next(recipient_record& out, std::optional<line_problem>& problem) override {
    problem.reset();
    for (;;) {
      if (!src_.next(line_)) return false;
      if (line_.find_first_not_of(" \t") == std::string::npos) continue;
      out.line = src_.number();
      if (auto why = parse_jsonl_line(line_, out)) problem = line_problem{src_.number(), *why};
      return true;
    }
  }

 private:
  line_source src_;
  std::string line_;
};

// RFC 4180: quoted fields may hold commas, doubled quotes and line breaks.
class csv_reader final : public recipients_reader {
 public:
  explicit csv_reader(std::unique_ptr<std::istream> in) : src_(std::move(in)) {
    std::vector<std::string> header;
    std::string why;
    for (;;) {
      if (!read_record(header, why)) throw std::runtime_error("CSV file is empty: a header row is required");
      if (!why.empty()) throw std::runtime_error(fmt::format("line {}: header: {}", start_line_, why));
      if (!(header.size() == 1 && header[0].empty())) break;
    }
    for (std::size_t i = 0; i < header.size(); ++i) {
      auto& name = header[i];
      if (name.empty()) throw std::runtime_error(fmt::format("line {}: header: column {} has no name", start_line_, i + 1));
      for (std::size_t j = 0; j < i; ++j)
        if (header[j] == name) throw std::runtime_error(fmt::format("line {}: header: column '{}' appears twice", start_line_, name));
      if (name == "to") to_column_ = i;
      if (name == "id") id_column_ = i;
    }
    if (!to_column_) throw std::runtime_error(fmt::format("line {}: header: there is no 'to' column", start_line_));
    columns_ = std::move(header);
  }

  bool next(recipient_record& out, std::optional<line_problem>& problem) override {
    problem.reset();
    std::string why;
    for (;;) {
      if (!read_record(fields_, why)) return false;
      if (why.empty() && fields_.size() == 1 && fields_[0].empty()) continue;  // blank line
      break;
    }
    out.line = start_line_;
    if (!why.empty()) {
      problem = line_problem{start_line_, why};
      return true;
    }
    if (fields_.size() != columns_.size()) {
      problem = line_problem{start_line_, fmt::format("{} fields, the header has {}", fields_.size(), columns_.size())};
      return true;
    }
    json::object data;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (!templates::utf8::valid(fields_[i])) {
        problem = line_problem{start_line_, fmt::format("column '{}' is not valid UTF-8", columns_[i])};
        return true;
      }
      if (i == *to_column_) out.to = fields_[i];
      else if (id_column_ && i == *id_column_) out.member = fields_[i];
      else data[columns_[i]] = fields_[i];
    }
    if (out.to.empty()) {
      problem = line_problem{start_line_, "'to' is empty"};
      return true;
    }
    out.data_json = json::serialize(data);
    return true;
  }

 private:
  // Reads one record, possibly over several physical lines. false at end of input.
  bool read_record(std::vector<std::string>& fields, std::string& why) {
    fields.clear();
    why.clear();
    if (!src_.next(line_)) return false;
    start_line_ = src_.number();
    std::string field;
    bool quoted = false, was_quoted = false;
    std::size_t bytes = 0;
    for (;;) {
      bytes += line_.size();
      if (bytes > max_line_bytes) {
        why = "record longer than 1 MiB";
        return true;
      }
      for (std::size_t i = 0; i < line_.size(); ++i) {
        char c = line_[i];
        if (quoted) {
          if (c == '"') {
            if (i + 1 < line_.size() && line_[i + 1] == '"') {
              field.push_back('"');
              ++i;
            } else {
              quoted = false;
            }
          } else {
            field.push_back(c);
          }
        } else if (c == ',') {
          fields.push_back(std::move(field));
          field.clear();
          was_quoted = false;
        } else if (c == '"' && field.empty() && !was_quoted) {
          quoted = was_quoted = true;
        } else if (was_quoted) {
          why = fmt::format("text after a closing quote in field {}", fields.size() + 1);
          return true;
        } else {
          field.push_back(c);
        }
      }
      if (!quoted) break;
      // A quoted field goes on over the line break.
      if (!src_.next(line_)) {
        why = "quoted field is not closed before the end of the file";
        return true;
      }
      field.append("\r\n");
    }
    fields.push_back(std::move(field));
    return true;
  }

  line_source src_;
  std::string line_;
  std::size_t start_line_ = 0;
  std::vector<std::string> columns_;
  std::vector<std::string> fields_;
  std::optional<std::size_t> to_column_, id_column_;
};

}  // namespace

std::optional<std::string> parse_jsonl_line(std::string_view line, recipient_record& out) {
  if (line.size() > max_line_bytes) return "line longer than 1 MiB";
  if (!templates::utf8::valid(line)) return "not valid UTF-8";
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec) return fmt::format("not valid JSON: {}", ec.message());
  if (!v.is_object()) return "not a JSON object";
  auto& obj = v.as_object();
  auto* to = obj.if_contains("to");
  if (!to) return "'to' is missing";
  if (!to->is_string()) return "'to' is not a string";
  if (to->as_string().empty()) return "'to' is empty";
  out.to = std::string(to->as_string());
  out.member.clear();
  if (auto* id = obj.if_contains("id")) {
    if (id->is_string()) out.member = std::string(id->as_string());
    else if (id->is_int64() || id->is_uint64()) out.member = json::serialize(*id);
    else return "'id' is neither a string nor a whole number";
  }
  obj.erase("to");
  obj.erase("id");
  out.data_json = json::serialize(obj);
  return std::nullopt;
}

std::unique_ptr<recipients_reader> recipients_reader::open(const std::string& path) {
  auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*in) throw std::runtime_error(fmt::format("{}: cannot open the recipient file", path));
  bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
  try {
    if (csv) return std::make_unique<csv_reader>(std::move(in));
    return std::make_unique<jsonl_reader>(std::move(in));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(fmt::format("{}:{}", path, e.what()));
  }
}

std::unique_ptr<recipients_reader> recipients_reader::from_text(std::string text, recipients_format format) {
  auto in = std::make_unique<std::istringstream>(std::move(text));
  if (format == recipients_format::csv) return std::make_unique<csv_reader>(std::move(in));
  return std::make_unique<jsonl_reader>(std::move(in));
}

}  // namespace budstikke::cli
