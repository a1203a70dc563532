# Writes the C++ definitions of the Lua scripts (cmake -P, run by queue/CMakeLists.txt at build
# time): for each NAME.lua, `const script NAME_script` with the file's bytes and their SHA1, and
# all_scripts() listing them. The bytes are written as hex escapes, so the source Redis receives
# is exactly the file that was hashed.
#
#   -DOUTPUT=file.cpp -DSCRIPTS=a.lua;b.lua -DHEADERS=queue/schema.hpp;...
# HEADERS declare the scripts: included so that a declaration that does not match its
# definition fails to compile.
cmake_minimum_required(VERSION 3.25)

set(text "// Generated from queue/scripts/*.lua by queue/scripts/embed.cmake: do not edit.\n")
string(APPEND text "#include \"queue/script.hpp\"\n")
foreach(header IN LISTS HEADERS)
  string(APPEND text "#include \"${header}\"\n")
endforeach()
string(APPEND text "\nnamespace budstikke::queue {\nnamespace {\n")

set(names "")
foreach(path IN LISTS SCRIPTS)
  get_filename_component(name "${path}" NAME_WE)
  if(NOT name MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "${path}: a script's file name must be a C++ name (lower case, digits, _)")
  endif()
  file(READ "${path}" hex HEX)
  file(SHA1 "${path}" sha1)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  # 32 bytes per line, as "\x6c\x6f...": the next escape's backslash ends each one.
  string(REPEAT "[0-9a-f]" 64 line_of_hex)
  string(REGEX REPLACE "(${line_of_hex})" "\\1\"\n    \"" lines "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" lines "${lines}")
  string(APPEND text "// ${name}.lua\nconstexpr char ${name}_source[${size} + 1] =\n    \"${lines}\";\n")
  list(APPEND names "${name}")
  set(sha1_${name} "${sha1}")
  set(size_${name} "${size}")
endforeach()

string(APPEND text "}  // namespace\n\n")
foreach(name IN LISTS names)
  string(APPEND text "extern const script ${name}_script;\n")
  string(APPEND text "constinit const script ${name}_script{\"${name}\", {${name}_source, ${size_${name}}}, \"${sha1_${name}}\"};\n")
endforeach()

string(APPEND text "\nnamespace {\nconstexpr const script* registry[] = {\n")
foreach(name IN LISTS names)
  string(APPEND text "    &${name}_script,\n")
endforeach()
string(APPEND text "};\n}  // namespace\n\nstd::span<const script* const> all_scripts() { return registry; }\n\n}  // namespace budstikke::queue\n")

file(WRITE "${OUTPUT}" "${text}")
