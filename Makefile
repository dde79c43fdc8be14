# kiln: the two set-up commands are `make demo` and `make test`; both install missing Debian
# packages first (scripts/deps.sh), then build with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

MAKEFLAGS += --no-print-directory

.PHONY: all deps build demo test test-asan valgrind modules fuzz bench clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target kiln-cli | grep -v "^\[" || true

demo: build
	@sh examples/demo.sh $(BUILD)/kiln

test:
	@sh scripts/deps.sh --test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS=-DKILN_SANITIZE=ON

valgrind: build
	@sh tests/valgrind.sh $(BUILD)

# the module graph of lib/ (also the CTest test `modules`)
modules:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target kiln | grep -v "^\[" || true
	@python3 scripts/check-modules.py --objects $(BUILD)/CMakeFiles/kiln.dir

# libFuzzer on every fuzz target, FUZZ_SECONDS each (docs/fuzzing.md); crashes land in
# tests/fuzz/regress/ and are replayed by every test run from then on
FUZZ_SECONDS ?= 600
fuzz:
	@sh scripts/deps.sh --test
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
