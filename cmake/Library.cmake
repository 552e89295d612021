# fg_library(NAME SRCS ... DEPS ...): one static library per source folder. The DEPS lists are the
# architecture: a front never links a store, a store never links a front, core links nothing of ours.
function(fg_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE fg_warnings)
endfunction()
