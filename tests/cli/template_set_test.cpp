// Template sets read from files stay inside their templates root: `extends` cannot name an
// absolute path or climb out with `..`, and a symlinked template cannot pull in another file.
#include <catch2/catch.hpp>

#include "cli/template_set.hpp"
#include "tests/support/servers.hpp"

using namespace budstikke;
using budstikke::testing::temp_dir;
namespace fs = std::filesystem;

namespace {

// dir/templates/<name>/text.mustache (with a partial {{>footer}} when `footer`), returning the set.
fs::path make_set(const fs::path& root, const std::string& name, bool footer = false) {
  auto set = root / name;
  fs::create_directories(set / "partials");
  std::ofstream(set / "text.mustache") << "Hei {{name}}\n" << (footer ? "{{>footer}}\n" : "");
  return set;
}

// The message of the error loading `set` gives, or "" when it loads.
std::string load_error(const fs::path& set, const std::string& root = "") {
  try {
    cli::load_template_set(set.string(), root);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("template sets: a layout named with an absolute path is refused") {
  temp_dir dir;
  auto root = dir / "templates";
  auto set = make_set(root, "newsletter", true);
  fs::create_directories(root / "layout");
  std::ofstream(root / "layout" / "footer.mustache") << "Hilsen\n";
  std::ofstream(set / "extends") << (root / "layout").string() << "\n";
  auto error = load_error(set);
  CHECK(error.find((set / "extends").string() + ": ") == 0);
  CHECK(error.find("is an absolute path") != std::string::npos);
  // The same layout named relative to the set is fine.
  std::ofstream(set / "extends") << "../layout\n";
  CHECK(load_error(set) == "");
  CHECK(cli::load_template_set(set.string()).partials.at("footer") == "Hilsen\n");
}

TEST_CASE("template sets: `..` that climbs out of the templates root is refused") {
  temp_dir dir;
  auto root = dir / "templates";
  auto set = make_set(root, "newsletter", true);
  fs::create_directories(dir / "elsewhere");
  std::ofstream(dir / "elsewhere" / "footer.mustache") << "not a template\n";
  std::ofstream(set / "extends") << "../../elsewhere\n";
  auto error = load_error(set);
  CHECK(error.find((set / "extends").string() + ": the layout '../../elsewhere' is outside the templates root") == 0);
  // A detour through `..` that stays inside is fine.
  fs::create_directories(root / "layout");
  std::ofstream(root / "layout" / "footer.mustache") << "Hilsen\n";
  std::ofstream(set / "extends") << "../newsletter/../layout\n";
  CHECK(load_error(set) == "");
}

TEST_CASE("template sets: a symlink leaving the templates root is refused, naming the file") {
  temp_dir dir;
  auto root = dir / "templates";
  auto set = make_set(root, "newsletter", true);
  std::ofstream(dir / "secret.txt") << "hemmelig\n";
  fs::create_symlink(dir / "secret.txt", set / "partials" / "footer.mustache");
  auto error = load_error(set);
  INFO(error);
  CHECK(error.find((set / "partials" / "footer.mustache").string() + ": links to ") == 0);
  CHECK(error.find("secret.txt, outside the templates root") != std::string::npos);
  // Not even /etc/passwd gets in as a partial.
  fs::remove(set / "partials" / "footer.mustache");
  fs::create_symlink("/etc/passwd", set / "partials" / "pw.mustache");
  CHECK(load_error(set).find((set / "partials" / "pw.mustache").string() + ": links to /etc/passwd") == 0);
  // A symlinked partials directory is held to the same rule, file by file.
  fs::remove(set / "partials" / "pw.mustache");
  fs::remove(set / "partials");
  fs::create_directories(dir / "outside-partials");
  std::ofstream(dir / "outside-partials" / "footer.mustache") << "Hilsen\n";
  fs::create_directory_symlink(dir / "outside-partials", set / "partials");
  CHECK(load_error(set).find((set / "partials" / "footer.mustache").string() + ": links to ") == 0);
}

TEST_CASE("template sets: a symlink within the templates root is fine") {
  temp_dir dir;
  auto root = dir / "templates";
  auto set = make_set(root, "newsletter", true);
  fs::create_directories(root / "shared");
  std::ofstream(root / "shared" / "footer.mustache") << "Hilsen forbundet\n";
  fs::create_symlink(root / "shared" / "footer.mustache", set / "partials" / "footer.mustache");
  INFO(load_error(set));
  auto loaded = cli::load_template_set(set.string());
  CHECK(loaded.partials.at("footer") == "Hilsen forbundet\n");
  CHECK(loaded.templates.at("text") == "Hei {{name}}\n{{>footer}}\n");
}

TEST_CASE("template sets: --templates-root widens (or narrows) what a set may reach") {
  temp_dir dir;
  auto root = dir / "templates";
  auto set = make_set(root / "avd-tromso", "newsletter", true);
  fs::create_directories(root / "layout");
  std::ofstream(root / "layout" / "footer.mustache") << "Hilsen\n";
  std::ofstream(set / "extends") << "../../layout\n";
  // By default the root is the set's parent (templates/avd-tromso): the layout is outside it.
  CHECK(load_error(set).find("is outside the templates root " + fs::canonical(root / "avd-tromso").string()) !=
        std::string::npos);
  CHECK(load_error(set, root.string()) == "");
  CHECK(cli::load_template_set(set.string(), root.string()).partials.at("footer") == "Hilsen\n");
  // A root that does not hold the set itself is refused too.
  fs::create_directories(dir / "other");
  CHECK(load_error(set, (dir / "other").string()).find(set.string() + ": the template set resolves to ") == 0);
}
