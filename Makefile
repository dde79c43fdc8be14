# kiln: the two set-up commands are `make demo` and `make test`; both install missing Debian
# packages first (scripts/deps.sh), then build with CMake.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# the tools, replaceable (tests/cli/make_targets.sh runs the recipes with a failing cmake)
CMAKE ?= cmake
DEPS ?= sh scripts/deps.sh
# `make install`: $(DESTDIR)$(PREFIX)/bin/kiln and the docs in $(DESTDIR)$(PREFIX)/share/doc/kiln
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install

MAKEFLAGS += --no-print-directory

.PHONY: all deps build demo install uninstall test test-asan valgrind modules fuzz bench clean

all: build

deps:
	@$(DEPS)

# the compiler's progress and errors show as they come; a failed step stops make (exit 2), so
# `make demo` never runs a stale binary
build: deps
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) --target kiln-cli

demo: build
	@sh examples/demo.sh $(BUILD)/kiln

# after `make` (as root for /usr/local: `sudo make install`); a staged install for a package:
# `make install DESTDIR=/tmp/stage PREFIX=/usr`
install:
	@test -x $(BUILD)/kiln || { echo "make install: $(BUILD)/kiln is not built: run \`make\` first" >&2; exit 1; }
	$(INSTALL) -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/kiln/commands
	$(INSTALL) -m 755 $(BUILD)/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	$(INSTALL) -m 644 README.md docs/*.md $(DESTDIR)$(PREFIX)/share/doc/kiln/
	$(INSTALL) -m 644 docs/commands/*.md $(DESTDIR)$(PREFIX)/share/doc/kiln/commands/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/kiln
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/kiln

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
	@$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@$(CMAKE) --build $(BUILD) -j $(JOBS) --target kiln
	@python3 scripts/check-modules.py --objects $(BUILD)/CMakeFiles/kiln.dir

# libFuzzer on every fuzz target, FUZZ_SECONDS each (docs/fuzzing.md); crashes land in
# tests/fuzz/regress/ and are replayed by every test run from then on
FUZZ_SECONDS ?= 600
fuzz:
	@sh scripts/deps.sh --test
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz
