# Build and test entry points for gdbstub.  `make demo` and `make test` are the whole set-up.
SHELL := /bin/bash
.DEFAULT_GOAL := test

# The interpreter of the venv: the system's own python3 where there is one. Debian's is built with PGO and
# LTO and links libpython statically; the pyenv build that comes first on PATH here (--enable-shared, no
# PGO) starts 1.8 ms slower (10.6 against 8.8 ms for a bare `-c pass` of the venv), which every stub
# start pays. A Python loop runs ~15 % slower there; the stub's CPU per stop, mostly system time, barely moves.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV := .venv
VPY := $(VENV)/bin/python
# The stamp names the install mode and the interpreter: a venv installed another way is installed again.
VENV_STAMP := $(VENV)/.installed-compat$(subst /,-,$(PYTHON)).stamp
BUILD := build
SRC := integration/programs
CC ?= gcc
CFLAGS_TEST := -g -O0 -Wall -fno-omit-frame-pointer
LDLIBS_TEST := -pthread
PYTEST_ARGS ?=
# The integration tests run on JOBS pytest-xdist workers (each test has its own ports and processes);
# JOBS=1 runs them serially. They mostly wait (gdb, stops, exits): on 2 cores 3 workers took 316 s
# where 2 took 413 s, for the same CPU time.
JOBS ?= 3
XDIST := $(if $(filter-out 1,$(JOBS)),-n $(JOBS),)

NAMES := $(basename $(notdir $(wildcard $(SRC)/*.c)))
# Programs that also get explicit PIE and non-PIE builds (the default build is the compiler's default).
VARIANT_NAMES := loop sample
BINS64 := $(NAMES:%=$(BUILD)/%)
BINS32 := $(NAMES:%=$(BUILD)/%-32)
BINS_PIE := $(VARIANT_NAMES:%=$(BUILD)/%-pie) $(VARIANT_NAMES:%=$(BUILD)/%-32-pie)
BINS_NOPIE := $(VARIANT_NAMES:%=$(BUILD)/%-nopie) $(VARIANT_NAMES:%=$(BUILD)/%-32-nopie)
# Static builds (-static -pthread: no libc.so, the executable carries glibc's thread_db descriptors).
STATIC_NAMES := tlsfind
BINS_STATIC := $(STATIC_NAMES:%=$(BUILD)/%-static) $(STATIC_NAMES:%=$(BUILD)/%-32-static)
ALL_BINS := $(BINS64) $(BINS32) $(BINS_PIE) $(BINS_NOPIE) $(BINS_STATIC)

.PHONY: deps venv programs gdb16 test unit integration fuzz lint bench demo clean

# System packages: installed only when missing; apt-get update only when something is.
# python3-venv: Debian's python3 cannot `-m venv` without it (unused when python3 is not Debian's).
DEB_PACKAGES := gcc gcc-multilib make gdb gdbserver lldb python3-venv debootstrap
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$sudo apt-get update -q </dev/null && \
	  $$sudo apt-get install -y -q --no-install-recommends $$missing </dev/null; \
	fi

venv: $(VENV_STAMP)
$(VENV_STAMP): pyproject.toml
	@# a venv of another interpreter is made again
	test -x $(VPY) && [ "$$(realpath $$($(VPY) -c 'import sys; print(sys._base_executable)'))" = "$$(realpath $$(command -v $(PYTHON)))" ] \
	  || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); } \
	  || { echo "$(PYTHON) -m venv failed (Debian's python3-venv, which \`make deps\` installs, missing?): using python3"; \
	       rm -rf $(VENV) && python3 -m venv $(VENV); }
	@# the distribution was called gdbstub before: two would register the same pytest plugin
	$(VPY) -m pip uninstall -y -q gdbstub >/dev/null 2>&1 || true
	@# editable_mode=compat: a .pth path entry instead of setuptools' import-hook finder, which
	@# every start of the venv's python (the stub's too) paid for: it imports pathlib, re, fnmatch,
	@# urllib.parse and ipaddress (11 ms, half a bare interpreter start).
	set -o pipefail; $(VPY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat 2>&1 \
	  | { grep -v "^WARNING: Location 'file:" || true; }
	rm -f $(VENV)/.installed.stamp
	touch $@

# gdb 16 and gdbserver 16 (Debian 13's) in a root of their own, for the tests and bench that run
# a second time with today's gdb (integration/harness.py: gdb in a chroot, gdbserver through the
# root's loader). Built once, outside build/ so that `make clean` keeps it (300 MB, minutes to make);
# the stamp is written last, so an interrupted debootstrap starts over.
GDB16_ROOT ?= .cache/gdb16-root
GDB16_STAMP := $(GDB16_ROOT)/.complete
gdb16: $(GDB16_STAMP)
$(GDB16_STAMP):
	rm -rf $(GDB16_ROOT).tmp
	mkdir -p $(dir $(GDB16_ROOT))
	debootstrap --variant=minbase --include=gdb,gdbserver,libc6-i386 trixie $(GDB16_ROOT).tmp \
	  > $(GDB16_ROOT).log 2>&1 || { tail -20 $(GDB16_ROOT).log; exit 1; }
	rm -rf $(GDB16_ROOT) && mv $(GDB16_ROOT).tmp $(GDB16_ROOT)
	touch $@

# Shared libraries the dlopen test program (dlhost.c) loads; their sources live apart in lib/.
LIBS := $(BUILD)/libplugin.so $(BUILD)/libplugin-32.so
programs: $(ALL_BINS) $(LIBS)
$(BUILD)/libplugin.so: $(SRC)/lib/plugin.c | $(BUILD)
	$(CC) $(CFLAGS_TEST) -shared -fPIC -o $@ $<
$(BUILD)/libplugin-32.so: $(SRC)/lib/plugin.c | $(BUILD)
	$(CC) -m32 $(CFLAGS_TEST) -shared -fPIC -o $@ $<
$(BUILD):
	mkdir -p $@
$(BINS64): $(BUILD)/%: $(SRC)/%.c | $(BUILD)
	$(CC) $(CFLAGS_TEST) -o $@ $< $(LDLIBS_TEST)
$(BINS32): $(BUILD)/%-32: $(SRC)/%.c | $(BUILD)
	$(CC) -m32 $(CFLAGS_TEST) -o $@ $< $(LDLIBS_TEST)
$(VARIANT_NAMES:%=$(BUILD)/%-pie): $(BUILD)/%-pie: $(SRC)/%.c | $(BUILD)
	$(CC) $(CFLAGS_TEST) -fPIE -pie -o $@ $< $(LDLIBS_TEST)
$(VARIANT_NAMES:%=$(BUILD)/%-nopie): $(BUILD)/%-nopie: $(SRC)/%.c | $(BUILD)
	$(CC) $(CFLAGS_TEST) -fno-pie -no-pie -o $@ $< $(LDLIBS_TEST)
$(VARIANT_NAMES:%=$(BUILD)/%-32-pie): $(BUILD)/%-32-pie: $(SRC)/%.c | $(BUILD)
	$(CC) -m32 $(CFLAGS_TEST) -fPIE -pie -o $@ $< $(LDLIBS_TEST)
$(VARIANT_NAMES:%=$(BUILD)/%-32-nopie): $(BUILD)/%-32-nopie: $(SRC)/%.c | $(BUILD)
	$(CC) -m32 $(CFLAGS_TEST) -fno-pie -no-pie -o $@ $< $(LDLIBS_TEST)
$(STATIC_NAMES:%=$(BUILD)/%-static): $(BUILD)/%-static: $(SRC)/%.c | $(BUILD)
	$(CC) $(CFLAGS_TEST) -static -o $@ $< $(LDLIBS_TEST)
$(STATIC_NAMES:%=$(BUILD)/%-32-static): $(BUILD)/%-32-static: $(SRC)/%.c | $(BUILD)
	$(CC) -m32 $(CFLAGS_TEST) -static -o $@ $< $(LDLIBS_TEST)

# Unit tests first, then integration even when a unit test failed (CI shows every failure in one run);
# the slowest tests are listed, and the exit status is non-zero when either part failed.
DURATIONS := --durations=25
test: deps venv programs gdb16
	@unit=0; integration=0; \
	echo "$(VPY) -m pytest tests $(DURATIONS) $(PYTEST_ARGS)"; \
	$(VPY) -m pytest tests $(DURATIONS) $(PYTEST_ARGS) || unit=$$?; \
	echo "$(VPY) -m pytest integration $(XDIST) $(DURATIONS) $(PYTEST_ARGS)"; \
	$(VPY) -m pytest integration $(XDIST) $(DURATIONS) $(PYTEST_ARGS) || integration=$$?; \
	echo "make test: unit tests exit status $$unit, integration tests exit status $$integration"; \
	[ $$unit = 0 ] && [ $$integration = 0 ]

unit: venv
	$(VPY) -m pytest tests $(PYTEST_ARGS)

integration: deps venv programs gdb16
	$(VPY) -m pytest integration $(XDIST) $(DURATIONS) $(PYTEST_ARGS)

# The long fuzz and fault runs (the same tests `make test` runs briefly), with their counts at the end.
FUZZ_TESTS := tests/test_fuzz_framing.py tests/test_fuzz_session.py tests/test_fuzz_grammar.py integration/test_faults.py integration/test_long.py
fuzz: deps venv programs
	rm -f $(BUILD)/reliability-counts.txt
	GDBSTUB_FUZZ=1 $(VPY) -m pytest $(FUZZ_TESTS) $(PYTEST_ARGS)
	@cat $(BUILD)/reliability-counts.txt

lint: venv
	$(VPY) -m ruff check gdbstub tests integration
	$(VPY) -m mypy --strict gdbstub

bench: deps venv programs gdb16
	$(VPY) integration/bench.py $(BENCH_ARGS)

demo: deps venv programs
	PYTHON=$(abspath $(VPY)) bash integration/demo.sh

clean:
	rm -rf $(BUILD) $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
