# `make run` and `make test` create or refresh .venv from pyproject.toml when it changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-from-pyproject

.PHONY: run test bench engine migration clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tui-trader $(ARGS)

engine: $(STAMP)
	$(BIN)/tui-trader engine $(ARGS)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)

# A new schema revision from what services/store/tables.py adds: make migration m="what changed"
migration: $(STAMP)
	$(BIN)/python -m services.store.migrations "$(m)"

clean:
	rm -rf $(VENV) build *.egg-info
