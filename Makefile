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

# Until the HTTP service lands, `run` shows what the binary offers and a short demo of a limit.
run: build
	@$(BIN) --help
	@echo
	@echo "Demo: 12 requests against a token bucket of 10 refilling at 0.5/s"
	@$(BIN) check --key demo --algorithm token_bucket --limit 10 --rate 0.5 --repeat 12

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
