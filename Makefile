# filepipe — local development entry points. `make test` and `make up` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install up test lint migrate bench chaos clean compose-up

$(BIN)/filepipe-admin: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e clients/python
	touch $@

install: $(BIN)/filepipe-admin

up: install
	bash local/up.sh

test: install
	bash local/services.sh
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

migrate: install
	$(BIN)/filepipe-admin migrate

bench: install
	bash bench/run.sh

# The failure scenarios of issue 13 against a stack of their own (25-30 min with the defaults if
# every scenario recovers, up to an hour if files get stuck;
# e.g. `make chaos CHAOS_ARGS="--scenario redis-down --outage 15 --files 30"`).
chaos: install
	bash local/services.sh
	$(BIN)/python -m chaos $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

compose-up:
	docker compose -f compose.local.yaml up --build
