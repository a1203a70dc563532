#include "templates/mustache.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/string.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <optional>
#include <set>
#include <stdexcept>
#include <utility>

namespace budstikke::templates {

std::string compile_error::to_string() const {
  std::string s = template_name;
  s += ':';
  s += std::to_string(line);
  s += ':';
  s += std::to_string(column);
  s += ": ";
  s += reason;
  return s;
}

void throw_exception_from_error(const compile_error& error, const boost::source_location&) {
  throw std::runtime_error(error.to_string());
}

namespace detail {

inline constexpr std::uint32_t no_unit = std::numeric_limits<std::uint32_t>::max();

enum class node_kind : std::uint8_t {
  text,
  variable,      // {{name}}, escaped per escape_mode
  raw_variable,  // {{{name}}} and {{&name}}
  section,
  inverted,
  partial,
  dynamic_partial,
  block,
  parent,
  dynamic_parent,
};

struct name_ref {
  std::string_view full;     // as written, e.g. "a.b"; for static partials/parents the partial name
  std::uint32_t first = 0;   // index into unit::segments
  std::uint32_t count = 0;   // 0: the implicit iterator "."
};

struct node {
  node_kind kind = node_kind::text;
  // The node begins a line of its source: in an indented partial or block the indentation goes
  // before it. Empty lines are not flagged, so indentation never leaves trailing whitespace.
  bool line_start = false;
  // Partials, parents and blocks that stand alone on their line indent what they expand to.
  bool standalone = false;
  std::string_view text;     // text nodes: the text; standalone partials/parents/blocks: indentation
  name_ref name;
  std::uint32_t end = 0;     // sections, blocks and parents: one past their last child node
  std::uint32_t target = no_unit;  // static partials and parents: the unit they expand
};

struct unit {
  std::string name;
  std::unique_ptr<const std::string> source;  // node views point into it; never moves
  std::vector<node> nodes;
  std::vector<std::string_view> segments;
  std::vector<std::string_view> top_names;    // first segments read outside sections
  std::vector<std::string_view> top_targets;  // static partials/parents expanded outside sections
};

struct template_set {
  std::vector<unit> units;  // units[0] is the template itself
  std::map<std::string, std::uint32_t, std::less<>> partials;
  std::vector<std::string> variables;
  std::vector<std::string> unresolved;  // static partial and parent names not in the set
};

namespace {

constexpr bool is_blank(char c) { return c == ' ' || c == '\t'; }
constexpr bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

enum class tag_kind : std::uint8_t {
  variable,
  raw_variable,
  section,
  inverted,
  close,
  comment,
  delimiters,
  partial,
  parent,
  block,
};

constexpr std::size_t npos = std::string_view::npos;

struct token {
  tag_kind kind = tag_kind::variable;
  bool dynamic = false;         // {{>*name}}, {{<*name}}
  bool standalone = false;
  std::string_view name;        // trimmed, without sigils
  std::size_t start = 0;        // the tag itself: [start, end)
  std::size_t end = 0;
  std::size_t region_start = 0; // what the tag takes out of the output: the tag, or its whole line
  std::size_t region_end = 0;
  std::size_t match = npos;     // openers: index of their closing token
  std::string_view indent;      // whitespace before a standalone tag on its line
};

constexpr bool is_opener(tag_kind k) {
  return k == tag_kind::section || k == tag_kind::inverted || k == tag_kind::parent || k == tag_kind::block;
}

class compiler {
 public:
  compiler(std::string_view src, unit& u) : src_(src), u_(u) {}

  std::optional<compile_error> run() {
    if (auto e = tokenize()) return e;
    mark_standalone();
    build(0, tokens_.size(), 0, src_.size(), 0);
    return std::nullopt;
  }

 private:
  compile_error error_at(std::size_t offset, std::string reason) const {
    compile_error e;
    e.template_name = u_.name;
    e.line = 1 + static_cast<std::size_t>(std::count(src_.begin(), src_.begin() + offset, '\n'));
    const auto nl = offset == 0 ? npos : src_.rfind('\n', offset - 1);
    e.column = nl == npos ? offset + 1 : offset - nl;
    e.reason = std::move(reason);
    return e;
  }

  static std::string tag_text(const token& t, std::string_view src) {
    return std::string(src.substr(t.start, t.end - t.start));
  }

  std::optional<compile_error> tokenize() {
    std::string_view open = "{{";
    std::string_view close = "}}";
    std::vector<std::size_t> stack;
    std::size_t pos = 0;
    for (;;) {
      const auto at = src_.find(open, pos);
      if (at == npos) break;
      token t;
      t.start = at;
      std::size_t content = at + open.size();
      const char sigil = content < src_.size() ? src_[content] : '\0';
      std::string terminator(close);
      switch (sigil) {
        case '{': t.kind = tag_kind::raw_variable; terminator.insert(0, 1, '}'); ++content; break;
        case '&': t.kind = tag_kind::raw_variable; ++content; break;
        case '#': t.kind = tag_kind::section; ++content; break;
        case '^': t.kind = tag_kind::inverted; ++content; break;
        case '/': t.kind = tag_kind::close; ++content; break;
        case '!': t.kind = tag_kind::comment; ++content; break;
        case '=': t.kind = tag_kind::delimiters; terminator.insert(0, 1, '='); ++content; break;
        case '>': t.kind = tag_kind::partial; ++content; break;
        case '<': t.kind = tag_kind::parent; ++content; break;
        case '$': t.kind = tag_kind::block; ++content; break;
        default: t.kind = tag_kind::variable; break;
      }
      const auto stop = src_.find(terminator, content);
      if (stop == npos) {
        return error_at(at, "unclosed tag: no '" + terminator + "' after '" +
                                std::string(src_.substr(at, std::min<std::size_t>(20, src_.size() - at))) + "'");
      }
      t.end = stop + terminator.size();
      t.region_start = t.start;
      t.region_end = t.end;
      std::string_view body = trim(src_.substr(content, stop - content));
      pos = t.end;

      if (t.kind == tag_kind::comment) {
        tokens_.push_back(t);
        continue;
      }
      if (t.kind == tag_kind::delimiters) {
        // {{=<% %>=}}: exactly two delimiters, no whitespace or '=' inside either.
        const auto gap = body.find_first_of(" \t\r\n");
        if (gap == npos) return error_at(at, "bad delimiter change: expected two delimiters separated by whitespace");
        const auto new_open = body.substr(0, gap);
        const auto new_close = trim(body.substr(gap));
        if (new_open.empty() || new_close.empty() || new_close.find_first_of(" \t\r\n") != npos ||
            new_open.find('=') != npos || new_close.find('=') != npos) {
          return error_at(at, "bad delimiter change: delimiters must be non-empty and contain no whitespace or '='");
        }
        open = new_open;
        close = new_close;
        tokens_.push_back(t);
        continue;
      }
      if ((t.kind == tag_kind::partial || t.kind == tag_kind::parent || t.kind == tag_kind::close) &&
          !body.empty() && body.front() == '*') {
        t.dynamic = true;
        body = trim(body.substr(1));
      }
      if (body.empty()) return error_at(at, "empty tag name in '" + tag_text(t, src_) + "'");
      if (body.find_first_of(" \t\r\n") != npos) {
        return error_at(at, "whitespace inside tag name in '" + tag_text(t, src_) + "'");
      }
      t.name = body;

      if (t.kind == tag_kind::close) {
        if (stack.empty()) return error_at(at, "closing tag '" + tag_text(t, src_) + "' without an open section");
        token& opener = tokens_[stack.back()];
        if (opener.name != t.name || opener.dynamic != t.dynamic) {
          return error_at(at, "mismatched closing tag '" + tag_text(t, src_) + "': expected to close '" +
                                  tag_text(opener, src_) + "'");
        }
        opener.match = tokens_.size();
        stack.pop_back();
      } else if (is_opener(t.kind)) {
        stack.push_back(tokens_.size());
      }
      tokens_.push_back(t);
    }
    if (!stack.empty()) {
      const token& t = tokens_[stack.back()];
      return error_at(t.start, "unclosed section '" + tag_text(t, src_) + "'");
    }
    return std::nullopt;
  }

  std::size_t line_begin(std::size_t p) const {
    while (p > 0 && src_[p - 1] != '\n') --p;
    return p;
  }

  bool blank_before(const token& t) const {
    for (auto p = line_begin(t.start); p < t.start; ++p)
      if (!is_blank(src_[p])) return false;
    return true;
  }

  // Rest of the tag's line is blank: where its newline starts and where the next line begins.
  struct line_tail {
    bool blank = false;
    std::size_t newline = 0;
    std::size_t next_line = 0;
  };
  line_tail tail_after(std::size_t p) const {
    while (p < src_.size() && is_blank(src_[p])) ++p;
    if (p == src_.size()) return {true, p, p};
    if (src_[p] == '\n') return {true, p, p + 1};
    if (src_[p] == '\r' && p + 1 < src_.size() && src_[p + 1] == '\n') return {true, p, p + 2};
    return {};
  }

  std::string_view before(const token& t) const {
    const auto lb = line_begin(t.start);
    return src_.substr(lb, t.start - lb);
  }

  void mark_standalone() {
    for (std::size_t i = 0; i < tokens_.size(); ++i) {
      token& t = tokens_[i];
      if (t.kind == tag_kind::variable || t.kind == tag_kind::raw_variable) continue;
      if (t.region_start != t.start || t.region_end != t.end) continue;  // already part of a pair
      const bool lead = blank_before(t);

      if (t.kind == tag_kind::parent || t.kind == tag_kind::block) {
        token& c = tokens_[t.match];
        // {{<parent}}{{/parent}} and {{$block}}{{/block}} on a line of their own stand alone as a pair.
        if (lead && c.start == t.end) {
          if (const auto tail = tail_after(c.end); tail.blank) {
            t.standalone = true;
            t.indent = before(t);
            t.region_start = line_begin(t.start);
            // An empty block keeps its newline: what replaces it is a line's content, not a line.
            c.region_end = t.kind == tag_kind::block ? tail.newline : tail.next_line;
            continue;
          }
        }
        // {{<parent}}{{$first}} alone on their line: both stand alone; the block starts below.
        if (t.kind == tag_kind::parent && lead && i + 1 < tokens_.size() && i + 1 != t.match &&
            tokens_[i + 1].kind == tag_kind::block && tokens_[i + 1].start == t.end) {
          if (const auto tail = tail_after(tokens_[i + 1].end); tail.blank) {
            t.standalone = true;
            t.indent = before(t);
            t.region_start = line_begin(t.start);
            tokens_[i + 1].standalone = true;
            tokens_[i + 1].region_end = tail.next_line;
            mark_last_block_pair(t);
            continue;
          }
        }
        if (t.kind == tag_kind::parent) mark_last_block_pair(t);
      }

      if (!lead) continue;
      const auto tail = tail_after(t.end);
      if (!tail.blank) continue;
      t.standalone = true;
      t.indent = before(t);
      t.region_start = line_begin(t.start);
      t.region_end = tail.next_line;
    }
  }

  // {{/last}}{{/parent}} alone on their line: the block's content ends on the line above.
  void mark_last_block_pair(const token& parent) {
    const auto close_parent = parent.match;
    if (close_parent == 0) return;
    token& cp = tokens_[close_parent];
    token& cb = tokens_[close_parent - 1];
    if (cb.kind != tag_kind::close || cb.end != cp.start) return;
    bool closes_block = false;
    for (std::size_t k = close_parent - 1; k-- > 0;) {
      if (tokens_[k].match == close_parent - 1) {
        closes_block = tokens_[k].kind == tag_kind::block;
        break;
      }
    }
    if (!closes_block || !blank_before(cb)) return;
    const auto tail = tail_after(cp.end);
    if (!tail.blank) return;
    cb.region_start = line_begin(cb.start);
    cp.region_end = tail.next_line;
  }

  bool at_line_start(std::size_t p) const { return p == 0 || src_[p - 1] == '\n'; }

  node& push(node_kind kind, std::size_t source_pos) {
    node n;
    n.kind = kind;
    n.line_start = pending_line_start_ || at_line_start(source_pos);
    pending_line_start_ = false;
    u_.nodes.push_back(n);
    return u_.nodes.back();
  }

  // Text is cut after each newline, so that every line start is a node the renderer can indent.
  void emit_text(std::size_t from, std::size_t to) {
    while (from < to) {
      const auto nl = src_.find('\n', from);
      const std::size_t stop = (nl == npos || nl >= to) ? to : nl + 1;
      std::size_t a = from;
      const bool line_start = at_line_start(from);
      if (line_start && margin_ > 0) {
        // Content of a standalone block: its common indentation is removed here and the
        // expansion site's indentation is added when rendering.
        std::size_t k = 0;
        while (a + k < stop && is_blank(src_[a + k])) ++k;
        const bool blank_line = a + k == stop || src_[a + k] == '\n' || src_[a + k] == '\r';
        a += blank_line ? k : std::min(k, margin_);
      }
      if (a < stop) {
        const std::string_view piece = src_.substr(a, stop - a);
        node n;
        n.kind = node_kind::text;
        n.text = piece;
        const bool empty_line = piece.front() == '\n' || piece.starts_with("\r\n");
        n.line_start = (line_start || pending_line_start_) && !empty_line;
        pending_line_start_ = false;
        u_.nodes.push_back(n);
      } else if (line_start) {
        pending_line_start_ = true;
      }
      from = stop;
    }
  }

  name_ref make_name(std::string_view full) {
    name_ref n;
    n.full = full;
    n.first = static_cast<std::uint32_t>(u_.segments.size());
    if (full == ".") return n;
    std::size_t p = 0;
    for (;;) {
      const auto dot = full.find('.', p);
      u_.segments.push_back(full.substr(p, dot == npos ? npos : dot - p));
      ++n.count;
      if (dot == npos) break;
      p = dot + 1;
    }
    return n;
  }

  void note_read(const name_ref& n, int depth) {
    if (depth == 0 && n.count > 0) u_.top_names.push_back(u_.segments[n.first]);
  }

  std::string_view strip_margin(std::string_view indent) const {
    std::size_t k = 0;
    while (k < indent.size() && k < margin_ && is_blank(indent[k])) ++k;
    return indent.substr(k);
  }

  // Smallest indentation of the non-blank lines in [from, to); `fallback` if all are blank.
  std::pair<std::size_t, std::size_t> content_margin(std::size_t from, std::size_t to, std::size_t fallback) const {
    std::size_t best = npos;
    std::size_t first_line = npos;
    std::size_t p = from;
    while (p < to) {
      std::size_t k = 0;
      while (p + k < to && is_blank(src_[p + k])) ++k;
      const bool blank = p + k >= to || src_[p + k] == '\n' || src_[p + k] == '\r';
      if (!blank) {
        if (first_line == npos) first_line = p;
        best = std::min(best, k);
      }
      const auto nl = src_.find('\n', p);
      if (nl == npos || nl >= to) break;
      p = nl + 1;
    }
    if (best == npos) return {fallback, npos};
    return {std::max(best, fallback), first_line};
  }

  // Builds nodes for tokens [first, last) and the text between them within [from, to).
  void build(std::size_t first, std::size_t last, std::size_t from, std::size_t to, int depth) {
    std::size_t cursor = from;
    for (std::size_t i = first; i < last;) {
      token& t = tokens_[i];
      const auto region_start = std::max(t.region_start, cursor);
      emit_text(cursor, region_start);
      if (t.standalone) pending_line_start_ = false;
      switch (t.kind) {
        case tag_kind::variable:
        case tag_kind::raw_variable: {
          node& n = push(t.kind == tag_kind::variable ? node_kind::variable : node_kind::raw_variable, region_start);
          n.name = make_name(t.name);
          note_read(n.name, depth);
          cursor = t.region_end;
          ++i;
          break;
        }
        case tag_kind::comment:
        case tag_kind::delimiters:
        case tag_kind::close:
          if (!t.standalone && at_line_start(region_start)) pending_line_start_ = true;
          cursor = t.region_end;
          ++i;
          break;
        case tag_kind::partial: {
          node& n = push(t.dynamic ? node_kind::dynamic_partial : node_kind::partial, region_start);
          fill_expansion(n, t, depth);
          cursor = t.region_end;
          ++i;
          break;
        }
        case tag_kind::section:
        case tag_kind::inverted: {
          const auto index = u_.nodes.size();
          {
            node& n = push(t.kind == tag_kind::section ? node_kind::section : node_kind::inverted, region_start);
            if (t.standalone) n.line_start = false;
            n.name = make_name(t.name);
            note_read(n.name, depth);
          }
          const token& c = tokens_[t.match];
          build(i + 1, t.match, t.region_end, c.region_start, t.kind == tag_kind::section ? depth + 1 : depth);
          if (!c.standalone && at_line_start(c.region_start)) pending_line_start_ = true;
          u_.nodes[index].end = static_cast<std::uint32_t>(u_.nodes.size());
          cursor = c.region_end;
          i = t.match + 1;
          break;
        }
        case tag_kind::block: {
          build_block(i, depth);
          cursor = tokens_[t.match].region_end;
          i = t.match + 1;
          break;
        }
        case tag_kind::parent: {
          const auto index = u_.nodes.size();
          {
            node& n = push(t.dynamic ? node_kind::dynamic_parent : node_kind::parent, region_start);
            fill_expansion(n, t, depth);
          }
          // Inside a parent only its blocks count: they are the arguments. Other text and tags
          // were checked for syntax and are ignored.
          for (std::size_t k = i + 1; k < t.match;) {
            const token& child = tokens_[k];
            if (child.kind == tag_kind::block) build_block(k, depth);
            k = is_opener(child.kind) ? child.match + 1 : k + 1;
          }
          pending_line_start_ = false;
          u_.nodes[index].end = static_cast<std::uint32_t>(u_.nodes.size());
          cursor = tokens_[t.match].region_end;
          i = t.match + 1;
          break;
        }
      }
    }
    emit_text(cursor, to);
  }

  void fill_expansion(node& n, const token& t, int depth) {
    if (t.standalone) {
      n.line_start = false;
      n.standalone = true;
      n.text = strip_margin(t.indent);
    }
    if (t.dynamic) {
      n.name = make_name(t.name);
      note_read(n.name, depth);
    } else {
      n.name.full = t.name;
      if (depth == 0) u_.top_targets.push_back(t.name);
    }
  }

  void build_block(std::size_t i, int depth) {
    const token& t = tokens_[i];
    const token& c = tokens_[t.match];
    const auto index = u_.nodes.size();
    const auto saved_margin = margin_;
    {
      node& n = push(node_kind::block, t.region_start);
      n.name.full = t.name;
      if (t.standalone) {
        n.line_start = false;
        n.standalone = true;
        const auto [m, first_line] = content_margin(t.region_end, c.region_start, margin_);
        n.text = m > margin_ ? src_.substr(first_line + margin_, m - margin_) : strip_margin(t.indent);
        margin_ = m;
      }
    }
    pending_line_start_ = false;
    build(i + 1, t.match, t.region_end, c.region_start, depth);
    margin_ = saved_margin;
    if (!c.standalone && at_line_start(c.region_start) && c.region_start == c.start) pending_line_start_ = true;
    u_.nodes[index].end = static_cast<std::uint32_t>(u_.nodes.size());
  }

  std::string_view src_;
  unit& u_;
  std::vector<token> tokens_;
  std::size_t margin_ = 0;  // indentation removed from lines of the enclosing standalone block
  bool pending_line_start_ = false;
};

struct context_frame {
  const boost::json::value* value;
  const context_frame* parent;
};

struct indent_frame {
  std::string_view indent;
  const indent_frame* parent;
};

// The blocks passed to the parents being expanded; the outermost definition of a name wins.
struct override_frame {
  const unit* owner;
  std::uint32_t parent_node;
  const override_frame* outer;
};

// Deep enough for any real template; stops runaway recursive partials and self-including blocks.
constexpr int max_expansion_depth = 100;

bool truthy(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return false;
    case boost::json::kind::bool_: return v.get_bool();
    case boost::json::kind::int64: return v.get_int64() != 0;
    case boost::json::kind::uint64: return v.get_uint64() != 0;
    case boost::json::kind::double_: return v.get_double() != 0.0 && v.get_double() == v.get_double();
    case boost::json::kind::string: return !v.get_string().empty();
    case boost::json::kind::array: return !v.get_array().empty();
    case boost::json::kind::object: return true;
  }
  return false;
}

constexpr std::array<bool, 256> html_special = [] {
  std::array<bool, 256> t{};
  t[static_cast<unsigned char>('&')] = true;
  t[static_cast<unsigned char>('<')] = true;
  t[static_cast<unsigned char>('>')] = true;
  t[static_cast<unsigned char>('"')] = true;
  t[static_cast<unsigned char>('\'')] = true;
  return t;
}();

class renderer {
 public:
  renderer(const template_set& set, std::string& out, escape_mode escape, const missing_variable_fn* on_missing)
      : set_(set), out_(out), escape_(escape), on_missing_(on_missing && *on_missing ? on_missing : nullptr) {}

  void render(const unit& u, std::uint32_t begin, std::uint32_t end, const context_frame* ctx,
              const indent_frame* indent, const override_frame* overrides) {
    for (std::uint32_t i = begin; i < end;) {
      const node& n = u.nodes[i];
      if (n.line_start && indent) emit_indent(indent);
      switch (n.kind) {
        case node_kind::text:
          out_.append(n.text);
          ++i;
          break;
        case node_kind::variable:
        case node_kind::raw_variable:
          if (const auto* v = lookup(u, n.name, ctx)) {
            append_value(*v, n.kind == node_kind::variable && escape_ == escape_mode::html);
          } else if (on_missing_) {
            (*on_missing_)(n.name.full);
          }
          ++i;
          break;
        case node_kind::section:
          if (const auto* v = lookup(u, n.name, ctx); v && truthy(*v)) {
            if (v->is_array()) {
              for (const auto& element : v->get_array()) {
                if (!spend()) break;  // nested sections over arrays multiply too
                const context_frame frame{&element, ctx};
                render(u, i + 1, n.end, &frame, indent, overrides);
              }
            } else {
              const context_frame frame{v, ctx};
              render(u, i + 1, n.end, &frame, indent, overrides);
            }
          }
          i = n.end;
          break;
        case node_kind::inverted:
          if (const auto* v = lookup(u, n.name, ctx); !v || !truthy(*v)) render(u, i + 1, n.end, ctx, indent, overrides);
          i = n.end;
          break;
        case node_kind::partial:
        case node_kind::dynamic_partial:
          expand(resolve(u, n, ctx), n, ctx, indent, overrides);
          ++i;
          break;
        case node_kind::parent:
        case node_kind::dynamic_parent: {
          const override_frame frame{&u, i, overrides};
          expand(resolve(u, n, ctx), n, ctx, indent, &frame);
          i = n.end;
          break;
        }
        case node_kind::block:
          expand_block(u, i, ctx, indent, overrides);
          i = n.end;
          break;
      }
    }
  }

 private:
  void emit_indent(const indent_frame* f) {
    if (!f) return;
    emit_indent(f->parent);
    out_.append(f->indent);
  }

  const boost::json::value* lookup(const unit& u, const name_ref& name, const context_frame* ctx) const {
    if (!ctx) return nullptr;
    if (name.count == 0) return ctx->value;
    const auto first = u.segments[name.first];
    const boost::json::value* v = nullptr;
    for (auto* f = ctx; f; f = f->parent) {
      if (const auto* obj = f->value->if_object()) {
        if (const auto it = obj->find(first); it != obj->end()) {
          v = &it->value();
          break;
        }
      }
    }
    // Only the first segment searches the context stack; the rest must resolve from there.
    for (std::uint32_t k = 1; v && k < name.count; ++k) v = child(*v, u.segments[name.first + k]);
    return v;
  }

  static const boost::json::value* child(const boost::json::value& v, std::string_view key) {
    if (const auto* obj = v.if_object()) {
      const auto it = obj->find(key);
      return it == obj->end() ? nullptr : &it->value();
    }
    if (const auto* arr = v.if_array()) {
      std::size_t index = 0;
      const auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
      if (ec != std::errc{} || p != key.data() + key.size()) return nullptr;
      return index < arr->size() ? &(*arr)[index] : nullptr;
    }
    return nullptr;
  }

  void append_value(const boost::json::value& v, bool escape) {
    char buf[32];
    switch (v.kind()) {
      case boost::json::kind::string: {
        const auto& s = v.get_string();
        const std::string_view sv(s.data(), s.size());
        if (escape) {
          append_html_escaped(sv, out_);
        } else {
          out_.append(sv);
        }
        return;
      }
      case boost::json::kind::int64: {
        const auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
        out_.append(buf, r.ptr);
        return;
      }
      case boost::json::kind::uint64: {
        const auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
        out_.append(buf, r.ptr);
        return;
      }
      case boost::json::kind::double_: {
        // Shortest round-trip form: 1.5 -> "1.5", 85.0 -> "85".
        const auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
        out_.append(buf, r.ptr);
        return;
      }
      case boost::json::kind::bool_:
        out_.append(v.get_bool() ? "true" : "false");
        return;
      case boost::json::kind::null:
      case boost::json::kind::array:
      case boost::json::kind::object:
        return;
    }
  }

  std::uint32_t resolve(const unit& u, const node& n, const context_frame* ctx) const {
    if (n.kind == node_kind::partial || n.kind == node_kind::parent) return n.target;
    const auto* v = lookup(u, n.name, ctx);
    if (!v || !v->is_string()) return no_unit;
    const auto& s = v->get_string();
    const auto it = set_.partials.find(std::string_view(s.data(), s.size()));
    return it == set_.partials.end() ? no_unit : it->second;
  }

  void expand(std::uint32_t target, const node& n, const context_frame* ctx, const indent_frame* indent,
              const override_frame* overrides) {
    if (target == no_unit || depth_ >= max_expansion_depth || !spend()) return;
    const unit& t = set_.units[target];
    // A standalone tag indents every line of what it expands to; an inline one leaves it as is.
    const indent_frame own{n.text, indent};
    const indent_frame* inner = n.standalone ? (n.text.empty() ? indent : &own) : nullptr;
    ++depth_;
    render(t, 0, static_cast<std::uint32_t>(t.nodes.size()), ctx, inner, overrides);
    --depth_;
  }

  void expand_block(const unit& u, std::uint32_t index, const context_frame* ctx, const indent_frame* indent,
                    const override_frame* overrides) {
    const node& n = u.nodes[index];
    const unit* content_unit = &u;
    std::uint32_t content = index;
    for (auto* f = overrides; f; f = f->outer) {
      const auto& nodes = f->owner->nodes;
      for (auto k = f->parent_node + 1; k < nodes[f->parent_node].end; k = nodes[k].end) {
        if (nodes[k].name.full == n.name.full) {
          content_unit = f->owner;
          content = k;
        }
      }
    }
    if (depth_ >= max_expansion_depth || !spend()) return;
    const node& c = content_unit->nodes[content];
    const indent_frame own{n.text, indent};
    const indent_frame* inner = n.standalone && !n.text.empty() ? &own : indent;
    // The block's line was taken out of the output, so its content starts a line.
    if (n.standalone && c.end > content + 1 && !content_unit->nodes[content + 1].line_start) emit_indent(inner);
    ++depth_;
    render(*content_unit, content + 1, c.end, ctx, inner, overrides);
    --depth_;
  }

  // A partial that includes itself twice doubles the work at every level: the depth limit alone
  // would allow 2^100 expansions. Every expansion spends from a budget; so does output size.
  bool spend() {
    if (++expansions_ > compiled_template::max_render_expansions ||
        out_.size() - start_size_ > compiled_template::max_render_bytes) {
      over_budget_ = true;
      return false;
    }
    return true;
  }

 public:
  bool over_budget() const { return over_budget_; }

 private:
  const template_set& set_;
  std::string& out_;
  const escape_mode escape_;
  const missing_variable_fn* const on_missing_;
  const std::size_t start_size_ = out_.size();
  std::size_t expansions_ = 0;
  bool over_budget_ = false;
  int depth_ = 0;
};

}  // namespace
}  // namespace detail

void append_html_escaped(std::string_view text, std::string& out) {
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (!detail::html_special[static_cast<unsigned char>(c)]) continue;
    out.append(text.data() + run, i - run);
    switch (c) {
      case '&': out.append("&amp;"); break;
      case '<': out.append("&lt;"); break;
      case '>': out.append("&gt;"); break;
      case '"': out.append("&quot;"); break;
      default: out.append("&#39;"); break;
    }
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
}

boost::system::result<compiled_template, compile_error>
compiled_template::compile(std::string_view source, const partial_sources& partials, std::string_view name) {
  auto set = std::make_shared<detail::template_set>();
  set->units.reserve(1 + partials.size());

  auto add_unit = [&](std::string_view unit_name, std::string_view text) -> std::optional<compile_error> {
    auto& u = set->units.emplace_back();
    u.name = std::string(unit_name);
    u.source = std::make_unique<const std::string>(text);
    return detail::compiler(*u.source, u).run();
  };

  if (auto e = add_unit(name, source)) return *e;
  for (const auto& [partial_name, partial_source] : partials) {
    set->partials.emplace(partial_name, static_cast<std::uint32_t>(set->units.size()));
    if (auto e = add_unit(partial_name, partial_source)) return *e;
  }

  for (auto& u : set->units) {
    for (auto& n : u.nodes) {
      if (n.kind != detail::node_kind::partial && n.kind != detail::node_kind::parent) continue;
      if (const auto it = set->partials.find(n.name.full); it != set->partials.end()) n.target = it->second;
      else set->unresolved.emplace_back(n.name.full);
    }
  }
  std::sort(set->unresolved.begin(), set->unresolved.end());
  set->unresolved.erase(std::unique(set->unresolved.begin(), set->unresolved.end()), set->unresolved.end());

  std::set<std::string, std::less<>> names;
  std::vector<bool> seen(set->units.size(), false);
  std::vector<std::uint32_t> pending{0};
  seen[0] = true;
  while (!pending.empty()) {
    const auto& u = set->units[pending.back()];
    pending.pop_back();
    for (const auto top : u.top_names) names.emplace(top);
    for (const auto target : u.top_targets) {
      const auto it = set->partials.find(target);
      if (it != set->partials.end() && !seen[it->second]) {
        seen[it->second] = true;
        pending.push_back(it->second);
      }
    }
  }
  set->variables.assign(names.begin(), names.end());

  compiled_template t;
  t.set_ = std::move(set);
  return t;
}

bool compiled_template::render(const boost::json::value& context, std::string& out, escape_mode escape,
                               const missing_variable_fn* on_missing) const {
  if (!set_) return true;
  const auto& root = set_->units.front();
  const detail::context_frame frame{&context, nullptr};
  detail::renderer r(*set_, out, escape, on_missing);
  r.render(root, 0, static_cast<std::uint32_t>(root.nodes.size()), &frame, nullptr, nullptr);
  return !r.over_budget();
}

const std::vector<std::string>& compiled_template::variables() const {
  static const std::vector<std::string> none;
  return set_ ? set_->variables : none;
}

const std::vector<std::string>& compiled_template::unresolved_partials() const {
  static const std::vector<std::string> none;
  return set_ ? set_->unresolved : none;
}

const std::string& compiled_template::name() const {
  static const std::string none;
  return set_ ? set_->units.front().name : none;
}

}  // namespace budstikke::templates
