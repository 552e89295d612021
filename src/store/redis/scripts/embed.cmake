# File: store/redis/scripts/embed.cmake
#
# fg_redis_scripts: the Redis Lua scripts embedded as string constants (store/redis/scripts.h).
# Each algorithm's script is the concatenation, at configure time, of
#   local FG_TEST_TIME = false|true    (the production and the test-time variant)
#   prelude.lua [debt_meter.lua] <algorithm>.lua
# written into a generated scripts.cc as raw string literals. Each algorithm's file ends with
# `return decide_checks(...)`, prelude.lua's driver that decides a call's n checks in order.
# Editing a .lua file re-runs CMake.
# Included from src/CMakeLists.txt.

set(_fg_scripts_dir ${CMAKE_CURRENT_LIST_DIR})
set(_fg_scripts_delimiter floodgate_lua)  # raw string delimiter: must not occur in any .lua file

# algorithm (file name = wire name) | C++ enumerator | chunks after prelude.lua
set(_fg_scripts
  "token_bucket|kTokenBucket|debt_meter token_bucket"
  "gcra|kGcra|debt_meter gcra"
  "leaky_bucket|kLeakyBucket|debt_meter leaky_bucket"
  "fixed_window|kFixedWindow|fixed_window"
  "sliding_window_log|kSlidingWindowLog|sliding_window_log"
  "sliding_window_counter|kSlidingWindowCounter|sliding_window_counter")

set(_fg_script_constants "")
set(_fg_script_cases "")
set(_fg_script_inputs ${_fg_scripts_dir}/scripts.cc.in)
foreach(_fg_entry IN LISTS _fg_scripts)
  string(REPLACE "|" ";" _fg_fields "${_fg_entry}")
  list(GET _fg_fields 0 _fg_name)
  list(GET _fg_fields 1 _fg_enum)
  list(GET _fg_fields 2 _fg_chunks)
  set(_fg_files "prelude.lua")
  separate_arguments(_fg_chunks)

  set(_fg_body "")
  foreach(_fg_chunk prelude ${_fg_chunks})
    set(_fg_file ${_fg_scripts_dir}/${_fg_chunk}.lua)
    list(APPEND _fg_script_inputs ${_fg_file})
    if(NOT _fg_chunk STREQUAL "prelude")
      string(APPEND _fg_files " + ${_fg_chunk}.lua")
    endif()
    file(READ ${_fg_file} _fg_text)
    string(FIND "${_fg_text}" ")${_fg_scripts_delimiter}\"" _fg_clash)
    if(NOT _fg_clash EQUAL -1)
      message(FATAL_ERROR "${_fg_file} contains the raw string delimiter ${_fg_scripts_delimiter}")
    endif()
    string(APPEND _fg_body "${_fg_text}")
  endforeach()

  string(APPEND _fg_script_constants
    "// ${_fg_name}: ${_fg_files}\n"
    "constexpr std::string_view ${_fg_enum}Script = R\"${_fg_scripts_delimiter}(local FG_TEST_TIME = false\n"
    "${_fg_body})${_fg_scripts_delimiter}\";\n"
    "constexpr std::string_view ${_fg_enum}TestScript = R\"${_fg_scripts_delimiter}(local FG_TEST_TIME = true\n"
    "${_fg_body})${_fg_scripts_delimiter}\";\n\n")
  string(APPEND _fg_script_cases
    "    case Algorithm::${_fg_enum}:\n"
    "      return test_time ? ${_fg_enum}TestScript : ${_fg_enum}Script;\n")
endforeach()

list(REMOVE_DUPLICATES _fg_script_inputs)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_fg_script_inputs})

set(FG_REDIS_SCRIPT_CONSTANTS "${_fg_script_constants}")
set(FG_REDIS_SCRIPT_CASES "${_fg_script_cases}")
configure_file(${_fg_scripts_dir}/scripts.cc.in
  ${CMAKE_CURRENT_BINARY_DIR}/generated/store/redis/scripts.cc @ONLY)

fg_library(fg_redis_scripts
  SRCS ${CMAKE_CURRENT_BINARY_DIR}/generated/store/redis/scripts.cc
  DEPS Boost::headers)
