# Quickstart: `make demo` runs the example agent, `make test` runs the whole suite.
# Each target builds .venv with the interpreter named by PYTHON (3.10 or newer) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit integration bench clean node

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "otel-langsmith needs Python 3.10 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

# The OpenTelemetry JavaScript SDK, for the gateway's test with a sender in another language.
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node: tests/node/node_modules/.installed

demo: $(VENV)/.demo
	$(BIN)/python examples/agent_demo.py

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test
	$(BIN)/mypy

# The fast loop: pure functions and in-process HTTP; `make integration` runs the rest.
unit: $(VENV)/.test
	$(BIN)/python -m pytest tests/unit -q --hypothesis-profile=quick

integration: $(VENV)/.test node
	$(BIN)/python -m pytest tests/integration

test: lint typecheck node
	$(BIN)/python -m pytest

bench: $(VENV)/.bench
	$(BIN)/python benchmarks/bench_e2e.py
	$(BIN)/python benchmarks/bench_gateway.py
	$(BIN)/python benchmarks/bench_client.py
	$(BIN)/python benchmarks/bench_multipart.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_spool.py
	$(BIN)/python benchmarks/bench_processor.py
	$(BIN)/python benchmarks/bench_conversations.py
	$(BIN)/python benchmarks/bench_instructions.py

clean:
	rm -rf $(VENV) .venv-envs build dist *.egg-info tests/node/node_modules
