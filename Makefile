# Enclave's two everyday commands are `make run` and `make test`; `make check` is the linters.
# Everything is installed into .venv from uv.lock (uv itself is pinned and lives in .tools).

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=
# The suite runs on this many processes (pytest-xdist); each test file stays on one of them.
TEST_WORKERS ?= 2
BENCH_ARGS ?=

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run test check bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced

run: install
	@echo "Starting Enclave on http://$(HOST):$(PORT) with data in $(DATA_DIR)/ (SQLite)."
	@echo "The first start prints the owner account 'admin' and its one-time password."
	@echo "Lost it? $(BIN)/enclave users reset-password admin --data-dir $(DATA_DIR)"
	$(BIN)/enclave serve --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: install
	@bash scripts/ensure-chromium.sh
	@bash scripts/ensure-nginx.sh
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

check: install
	$(BIN)/ruff check src tests bench scripts deploy
	$(BIN)/ruff format --check src tests bench scripts deploy
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/bandit -q -r src -c pyproject.toml --severity-level high

# S1-S5 of docs/performance.md: one server on CPU 0, the load generator on CPU 1 (several minutes);
# BENCH_ARGS="--nodes 1 2 3" measures clusters behind nginx (PostgreSQL and Redis on this machine).
bench: install
	@bash scripts/ensure-nginx.sh
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
