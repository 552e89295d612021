# Every third-party package floodgate uses, found once. All come from Debian bookworm packages
# (scripts/install-deps.sh installs them). Do not add EXACT to the Boost line: "1.81" != "1.81.0".

find_package(Threads REQUIRED)
find_package(Boost 1.81 CONFIG REQUIRED COMPONENTS json url)
find_package(OpenSSL REQUIRED)  # TLS to Redis (rediss://) through Asio's SSL stream
find_package(fmt CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(yaml-cpp CONFIG REQUIRED)  # target: yaml-cpp (no namespace in 0.7)
# The Envoy rate limit service: CMake's FindProtobuf (Debian ships no protobuf-config.cmake) and
# gRPC's own config (gRPC::grpc++, gRPC::grpc_cpp_plugin).
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# hiredis 0.14 ships no CMake target: its RESP reader and command formatter are all we use.
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

if(FLOODGATE_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
endif()
if(FLOODGATE_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)
endif()
