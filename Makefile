# Two entry points: `make demo` runs the main job on the default model, `make test` the suite.
# Both install what is missing and never fetch twice; scripts/setup.sh (the README's commands)
# installs make itself first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MI_CACHE_DIR ?= $(HOME)/.cache/montessori-swift
export MI_CACHE_DIR
MODEL := $(MI_CACHE_DIR)/SmolLM2-135M-Instruct.Q4_1.gguf
BIN := .build/release

.PHONY: demo test lint crash-test install experiment deps model build bench clean

deps:
	@scripts/install-deps.sh

model: deps
	@scripts/fetch-model.sh

build: deps
	swift build -c release

# One round of the Montessori-Instruct loop on the default model at small sizes (configs/demo.yaml);
# every file stays in runs/demo, and a rerun skips what is done and resumes what was interrupted.
demo: model build
	$(BIN)/mi-model info --model "$(MODEL)"
	$(BIN)/mi-run --config configs/demo.yaml --set teacher="$(MODEL)" --run-dir runs/demo

# configs/experiment.yaml for each seed (SEEDS="1 2 3"); results in experiments/results/, resumable.
SEEDS ?= 1 2 3
experiment: model build
	scripts/experiment.sh $(SEEDS)

# swift format's lint (.swift-format) and the 90-line limit on functions: scripts/lint.sh.
lint:
	scripts/lint.sh

# A small mi-run killed with SIGKILL at K random moments, rerun to the end: every output must equal
# an uninterrupted run's (scripts/crash-test.sh; the suite runs it with K=2).
K ?= 10
crash-test: build
	MI_BIN_DIR="$(CURDIR)/$(BIN)" scripts/crash-test.sh $(K)

# Tests use only the public API, so the release build above is reused as is.
# scripts/test-suite.sh: the suite within MI_TEST_TIMEOUT seconds (default 2700), naming the tests
# still running if it is stopped.
test: lint model build
	MI_MODEL="$(MODEL)" MI_BIN_DIR="$(CURDIR)/$(BIN)" scripts/test-suite.sh

# The tools into $(PREFIX)/bin (default ~/.local/bin), so the README's examples run as written.
PREFIX ?= $(HOME)/.local
install: build
	install -d "$(PREFIX)/bin"
	for f in $(BIN)/mi-*; do [ -f "$$f" ] && [ -x "$$f" ] && install -m 755 "$$f" "$(PREFIX)/bin/"; done; true
	@echo "installed in $(PREFIX)/bin$$(case ":$$PATH:" in *":$(PREFIX)/bin:"*) ;; *) echo " (not on PATH: export PATH=\"$(PREFIX)/bin:\$$PATH\")";; esac)"

clean:
	rm -rf .build
