# `make run` and `make test` create or refresh .venv from the lock of exact versions
# (requirements-lock.txt) when it or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements-lock.txt
STAMP := $(VENV)/.installed-from-lock
PIP := $(BIN)/python -m pip -q --disable-pip-version-check
UV_VERSION := 0.13.8

.PHONY: run test test-fast test-async mutate bench engine migration lock clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r $(LOCK)
	$(PIP) install --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tui-trader $(ARGS)

engine: $(STAMP)
	$(BIN)/tui-trader engine $(ARGS)

# Two workers on the two cores; tests/test_lock.py fails when the lock no longer satisfies pyproject.toml.
# The engine, unit and store tests run a second time with the paper client answering after
# each call (as a venue does), not inside it.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2 $(ARGS)
	TUI_TRADER_TEST_PAPER_EVENTS=async $(BIN)/python -m pytest -q -n 2 -m "not tui and not process" $(ARGS)

# The whole suite with the paper client answering asynchronously.
test-async: $(STAMP)
	TUI_TRADER_TEST_PAPER_EVENTS=async $(BIN)/python -m pytest -q -n 2 $(ARGS)

# The unit, engine and store tests only (no Pilot, no other process): well under a minute.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not tui and not process" $(ARGS)

# Mutation testing of the pure rules (services/rules/, portfolio, signal queue) by tools/mutate.py:
# fails when the tests kill fewer than 95 % of the mutants (about 10 minutes, one worker).
mutate: $(STAMP)
	$(BIN)/python tools/mutate.py --json mutate-report.json --fail-under 95 $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

# Re-resolve the exact versions from pyproject.toml's ranges, for every platform and Python
# >= 3.11, with uv's resolver (pip has no lock of its own); commit the result.
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install uv==$(UV_VERSION)
	$(BIN)/uv pip compile -q --universal --python-version 3.11 --extra test --upgrade -o $(LOCK) pyproject.toml

# A new schema revision from what services/store/tables.py adds: make migration m="what changed"
migration: $(STAMP)
	$(BIN)/python -m services.store.migrations "$(m)"

clean:
	rm -rf $(VENV) build *.egg-info
