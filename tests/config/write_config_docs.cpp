// Writes docs/config.md's reference tables anew from config/keys.cpp and config{}'s defaults:
// `ninja -C build config_docs`. The prose around the tables is left as it is.
#include <fstream>
#include <iostream>
#include <sstream>

#include "config/reference.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_config_docs docs/config.md\n";
    return 2;
  }
  std::stringstream old;
  old << std::ifstream(argv[1]).rdbuf();
  try {
    auto fresh = budstikke::with_reference_tables(old.str());
    if (fresh != old.str()) std::ofstream(argv[1]) << fresh;
    std::cout << argv[1] << (fresh == old.str() ? " is up to date\n" : " written\n");
  } catch (const std::exception& e) {
    std::cerr << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
