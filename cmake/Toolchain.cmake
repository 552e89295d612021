# Compiler settings shared by every target: warnings, sanitizers, ccache.

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
  set(CMAKE_C_COMPILER_LAUNCHER "${CCACHE_PROGRAM}")
endif()

add_library(fg_warnings INTERFACE)
target_compile_options(fg_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough
  $<$<BOOL:${FLOODGATE_WERROR}>:-Werror>)

# The Lua scripts of the Redis store compute with IEEE doubles; keep the C++ side free of fused
# multiply-adds so any floating-point step we ever share with them rounds the same way.
add_compile_options(-ffp-contract=off)

if(FLOODGATE_FUZZ)
  # Every object gets coverage instrumentation; only the fuzz targets link the fuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(FLOODGATE_SANITIZE)
  add_compile_options(-fsanitize=${FLOODGATE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${FLOODGATE_SANITIZE})
  if(FLOODGATE_SANITIZE MATCHES "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # Asio's completion handlers are ordered by std::atomic_thread_fence, which g++ 12 warns TSan
    # does not model (-Wtsan). Asio's fences sit beside mutex/epoll synchronization TSan does see.
    add_compile_options(-Wno-tsan)
  endif()
endif()
