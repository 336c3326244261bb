# kflow: the two commands are `make run` and `make test`; both set up the machine first when needed.
SHELL := /bin/bash
DEPS ?= /opt/kflow-deps
export PKG_CONFIG_PATH := $(DEPS)/librdkafka/static:$(PKG_CONFIG_PATH)
SCRATCH ?= .build
SWIFT_BUILD := swift build --scratch-path $(SCRATCH)
RELEASE_BIN = $(shell $(SWIFT_BUILD) -c release --show-bin-path 2>/dev/null)
PYTHON := $(DEPS)/venv/bin/python

.PHONY: setup build debug run test unit e2e bench gen deb clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT_BUILD) -c release

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

test: setup
	$(MAKE) unit
	$(MAKE) e2e

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
	@bash scripts/deb.sh

clean:
	rm -rf .build .build-* out
