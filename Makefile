# floodgate — the two commands that matter:
#   make run    install what is missing, build, start floodgate on the in-memory store
#   make test   install what is missing, build, run every test
# and the rest: make bench | asan | tsan | format | format-check | clean

PRESET ?= release
BUILD := build/$(PRESET)
BIN := $(BUILD)/src/floodgate
SOURCES := $(shell git ls-files '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps configure build run test bench asan tsan format format-check clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake --preset $(PRESET) > /dev/null

build: configure
	@cmake --build --preset $(PRESET)

# Starts the service on the in-memory store, on port 8080 unless PORT says otherwise.
run: build
	@$(BIN) serve

test: build
	@ctest --preset $(PRESET)

bench: build
	@$(BUILD)/bench/floodgate_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

asan:
	@$(MAKE) --no-print-directory test PRESET=asan

tsan: deps
	@cmake --preset tsan > /dev/null
	@cmake --build --preset tsan --target concurrency_tests
	@ctest --preset tsan

format:
	@clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES)

clean:
	@rm -rf build
