// Hosts the tests' precompiled header (tests/CMakeLists.txt): every test binary reuses it.
