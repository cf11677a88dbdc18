# Everything a fresh machine needs, from the project's own files.
#   make run   - the embedded default: every service on SQLite, in one go
#   make test  - contract checks and the whole test suite (SQLite and PostgreSQL)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF := node_modules/.bin/buf

.PHONY: setup run test lint protos protos-check pytest postgres clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

$(BUF): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

setup: $(BIN)/.installed $(BUF)

run: $(BIN)/.installed
	$(BIN)/vpctl up

protos: $(BIN)/.installed
	$(BIN)/python scripts/gen_protos.py

protos-check: $(BIN)/.installed
	$(BIN)/python scripts/gen_protos.py --check

lint: $(BUF)
	$(BUF) lint

postgres:
	./scripts/ensure_postgres.sh

pytest: $(BIN)/.installed postgres
	$(BIN)/pytest -q

test: setup lint protos-check pytest

clean:
	rm -rf $(VENV) node_modules .pytest_cache
