# floodgate — the two commands that matter:
#   make run    install what is missing, build, start floodgate on the in-memory store
#   make test   install what is missing, build, run every test
# and the rest: make bench | asan | tsan | fuzz | format | format-check | clean

PRESET ?= release
BUILD := build/$(PRESET)
BIN := $(BUILD)/src/floodgate
# Tracked files and new ones not yet added (not ignored), so a new file is formatted and checked
# before its first commit.
SOURCES := $(shell git ls-files --cached --others --exclude-standard '*.cc' '*.h' 2>/dev/null)

.PHONY: all deps configure build run test bench asan tsan fuzz format format-check clean

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
	@cmake --build --preset tsan --target concurrency_tests redis_store_tests redis_sentinel_tests \
		redis_cluster_tests
	@ctest --preset tsan

# libFuzzer targets (clang-14, ASan + UBSan), each run for FUZZ_SECONDS on a working corpus
# seeded from tests/fuzz/corpus. A crash leaves its input in build/fuzz/ and fails the target.
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake --preset fuzz > /dev/null
	@cmake --build --preset fuzz --target check_request_fuzz api_fuzz resp_fuzz rls_config_fuzz
	@for t in check_request api resp rls_config; do \
	  mkdir -p build/fuzz/corpus/$$t && \
	  echo "fuzz: $${t}_fuzz for $(FUZZ_SECONDS) s" && \
	  if ! build/fuzz/tests/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	      -artifact_prefix=build/fuzz/ -print_final_stats=1 \
	      build/fuzz/corpus/$$t tests/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1; then \
	    tail -40 build/fuzz/$$t.log; exit 1; \
	  fi; \
	  grep -E "Done|exec_per_sec" build/fuzz/$$t.log; \
	done

format:
	@clang-format -i $(SOURCES)

format-check:
	@clang-format --dry-run --Werror $(SOURCES)

clean:
	@rm -rf build
