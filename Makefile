# kflow: the two commands are `make run` and `make test`; both set up the machine first when needed.
SHELL := /bin/bash
DEPS ?= /opt/kflow-deps
export PKG_CONFIG_PATH := $(DEPS)/librdkafka/static:$(PKG_CONFIG_PATH)
SCRATCH ?= .build
SWIFT_BUILD := swift build --scratch-path $(SCRATCH)
# One release build serves `run`, the end-to-end tests and the Debian package (static Swift runtime).
RELEASE_FLAGS := -c release --static-swift-stdlib -Xlinker -z -Xlinker now
RELEASE_BIN = $(shell $(SWIFT_BUILD) $(RELEASE_FLAGS) --show-bin-path 2>/dev/null)
PYTHON := $(DEPS)/venv/bin/python

.PHONY: setup build debug run test unit e2e system bench gen deb clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT_BUILD) $(RELEASE_FLAGS)

debug: setup
	$(SWIFT_BUILD)

# Runs the collector in the foreground with the default configuration (plus CONFIG=FILE when given),
# starting a local broker on 127.0.0.1:9092 first when the configured one is the default and nothing listens.
run: build
	@bash scripts/run.sh "$(RELEASE_BIN)" $(if $(CONFIG),-c $(CONFIG))

unit: setup
	swift test --scratch-path $(SCRATCH)

e2e: build
	KFLOW_BIN="$(RELEASE_BIN)" $(PYTHON) -m pytest -q Tests/e2e

# The Debian package under a real systemd (a Debian 12 guest booted with systemd-nspawn).
system: build
	DEB_SCRATCH=$(SCRATCH) bash scripts/system-test.sh

test: setup
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) system

# Side-by-side benchmark against nfacctd (docs/BENCHMARKS.md); BENCH_ARGS="--rates 100k,200k ..." to vary it.
bench: build gen
	KFLOW_BIN="$(RELEASE_BIN)" $(PYTHON) bench/run.py $(BENCH_ARGS)

# The IPFIX load generator (tools/ipfix-gen), built into out/.
gen: out/ipfix-gen

out/ipfix-gen: tools/ipfix-gen/ipfix-gen.c
	@mkdir -p out
	cc -O2 -Wall -Wextra -o $@ $<

# The Debian package (out/deb/kflow_VERSION_ARCH.deb); see docs/PACKAGING.md.
deb: setup
	@DEB_SCRATCH=$(SCRATCH) bash scripts/deb.sh

clean:
	rm -rf .build .build-* out
