# Everything a fresh machine needs, from the project's own files.
#   make run   - the embedded default: every service on SQLite, in one go
#   make test  - contract checks and the whole test suite (SQLite and PostgreSQL)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BUF := node_modules/.bin/buf

.PHONY: setup run test lint protos protos-check pytest postgres clean promtool-test

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

# Prometheus rules: syntax and unit tests (deploy/prometheus/tests). promtool comes
# with Debian's prometheus package; its postinst does not start a daemon here (no
# init system; policy-rc.d denies it), and --no-install-recommends keeps out
# prometheus-node-exporter. The ops tests start /usr/bin/prometheus themselves.
promtool-test:
	command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)
	promtool check rules deploy/prometheus/rules/*.yml
	promtool check config --syntax-only deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/tests/*.yml

test: setup lint protos-check promtool-test pytest

clean:
	rm -rf $(VENV) node_modules .pytest_cache
