# kflow: the two commands are `make run` and `make test`; both set up the machine first when needed.
SHELL := /bin/bash
DEPS ?= /opt/kflow-deps
export PKG_CONFIG_PATH := $(DEPS)/librdkafka/static:$(PKG_CONFIG_PATH)
SCRATCH ?= .build
SWIFT_BUILD := swift build --scratch-path $(SCRATCH)
# One release build serves `run`, the end-to-end tests and the Debian package (static Swift runtime).
RELEASE_FLAGS := $(shell grep -v '^\#' scripts/release-flags)
RELEASE_BIN = $(shell $(SWIFT_BUILD) $(RELEASE_FLAGS) --show-bin-path 2>/dev/null)
PYTHON := $(DEPS)/venv/bin/python

.PHONY: setup build debug run test unit e2e system bench gen deb clean fuzz fuzz-smoke fuzz-build fuzz-seeds

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
	$(MAKE) fuzz-smoke
	$(MAKE) e2e
	$(MAKE) system

# libFuzzer targets (Fuzz/, docs/TESTING.md): the datagram decoders with the JSON encoder, the template
# snapshot import, the .properties parser and configuration load, the sFlow decoder. Built apart (KFLOW_FUZZ=1 declares them,
# FUZZ_SCRATCH keeps their sanitized objects away from the normal build). `make fuzz` runs each for
# FUZZ_SECONDS; `make fuzz-smoke` (part of `make test`) runs each for a fixed count (FUZZ_SMOKE_RUNS). A crash fails the
# target and leaves the input in out/fuzz/crashes/.
FUZZ_SECONDS ?= 60
# Runs per target in fuzz-smoke, about 15 s each here (the configuration load is the slowest per input).
FUZZ_SMOKE_RUNS ?= decoder:10000 snapshot:20000 properties:1500 sflow:100000
FUZZ_SCRATCH ?= .build-fuzz
FUZZ_TARGETS := decoder snapshot properties sflow
FUZZ_BUILD := KFLOW_FUZZ=1 swift build --scratch-path $(FUZZ_SCRATCH) -Xswiftc -sanitize=fuzzer,address
FUZZ_BIN = $(shell KFLOW_FUZZ=1 swift build --scratch-path $(FUZZ_SCRATCH) --show-bin-path 2>/dev/null)
FUZZ_OUT := out/fuzz

fuzz-build: setup
	@for t in $(FUZZ_TARGETS); do $(FUZZ_BUILD) --product kflow-fuzz-$$t || exit 1; done

# Seeds are written fresh each time, never committed: the shared corpus's sequences for the decoder, the
# snapshots of their templates (written by the snapshot target itself), the reference configuration and
# Fuzz/seeds/properties for the properties target.
fuzz-seeds: fuzz-build
	@rm -rf $(FUZZ_OUT)/seeds && mkdir -p $(FUZZ_OUT)/seeds/{decoder,snapshot,properties,sflow} $(FUZZ_OUT)/crashes
	@$(PYTHON) scripts/fuzz-seeds.py $(FUZZ_OUT)/seeds/decoder
	@$(PYTHON) scripts/fuzz-seeds.py --sflow $(FUZZ_OUT)/seeds/sflow
	@KFLOW_FUZZ_SEEDS_FROM=$(FUZZ_OUT)/seeds/decoder KFLOW_FUZZ_SEEDS_OUT=$(FUZZ_OUT)/seeds/snapshot $(FUZZ_BIN)/kflow-fuzz-snapshot
	@KFLOW_FUZZ_SEEDS_OUT=$(FUZZ_OUT)/seeds/properties $(FUZZ_BIN)/kflow-fuzz-properties
	@cp Fuzz/seeds/properties/* $(FUZZ_OUT)/seeds/properties/

fuzz: fuzz-seeds
	@for t in $(FUZZ_TARGETS); do mkdir -p $(FUZZ_OUT)/corpus/$$t; echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BIN)/kflow-fuzz-$$t $(FUZZ_OUT)/corpus/$$t $(FUZZ_OUT)/seeds/$$t -max_len=65536 \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(FUZZ_OUT)/crashes/$$t- 2>&1 \
	    | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|==ERROR|SUMMARY|Fatal error|artifact' \
	    ; test $${PIPESTATUS[0]} -eq 0 || exit 1; done

fuzz-smoke: fuzz-seeds
	@for pair in $(FUZZ_SMOKE_RUNS); do t=$${pair%%:*}; runs=$${pair##*:}; \
	  rm -rf $(FUZZ_OUT)/smoke/$$t && mkdir -p $(FUZZ_OUT)/smoke/$$t; echo "fuzz-smoke: $$t, $$runs runs"; \
	  $(FUZZ_BIN)/kflow-fuzz-$$t $(FUZZ_OUT)/smoke/$$t $(FUZZ_OUT)/seeds/$$t -max_len=65536 -seed=1 \
	    -runs=$$runs -artifact_prefix=$(FUZZ_OUT)/crashes/$$t- 2>&1 \
	    | grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|==ERROR|SUMMARY|Fatal error|artifact' \
	    ; test $${PIPESTATUS[0]} -eq 0 || exit 1; done

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
