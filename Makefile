# Everything installs itself into .venv: a fresh machine needs only Python 3.11,
# gcc and this repository (the PostgreSQL server binaries the tests need are found, or
# installed from Debian's packages by `make postgres`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINTED := engine apps ui tests bench
# The suite in one process per core (pytest-xdist), whole files per process so module
# fixtures are built once; each process starts its own throwaway PostgreSQL cluster.
# `make test PYTEST_WORKERS=` runs it in one process.
PYTEST_WORKERS ?= -n $(shell nproc 2>/dev/null || echo 2) --dist loadfile

.PHONY: demo test test-fast bench check lint clean chromium postgres wrk

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Tidepool needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## demo: set up, build a SQLite demo database with sample rows, serve it on 127.0.0.1:8000
demo: $(STAMP)
	$(BIN)/tidepool demo

## chromium: Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium)
chromium:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## wrk: Debian's wrk, the load generator bench_http uses (and its smoke test runs); without
## it the benchmark falls back to its Python client, so a failed install only warns
wrk:
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk) || \
	  echo "wrk could not be installed: bench_http uses its Python client, and the wrk smoke test skips" >&2

## postgres: the PostgreSQL server binaries (initdb, pg_ctl) the tests start a throwaway cluster
## with: found as tests/support/pgcluster.py finds them, else installed from Debian's packages
postgres:
	@if $(PYTHON) -c 'import sys; sys.path.insert(0, "."); from tests.support.pgcluster import find_bindir; print("PostgreSQL server binaries:", find_bindir())' 2>/dev/null; then :; else \
	  echo "PostgreSQL server binaries (initdb, pg_ctl) not found: installing Debian's postgresql-15 (or postgresql) with apt-get..."; \
	  { apt-get update && { apt-get install -y postgresql-15 || apt-get install -y postgresql; }; } || { \
	    echo "Could not install PostgreSQL. Install the server binaries yourself (Debian: apt-get install postgresql) or set TIDEPOOL_PG_BINDIR to the directory holding initdb and pg_ctl." >&2; exit 1; }; \
	fi

## test: set up, lint (ruff, mypy strict) and run the whole suite (SQLite + a throwaway
## PostgreSQL, browser tests), slow tests included
test: $(STAMP) chromium postgres wrk
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy engine ui
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

## test-fast: lint, then the suite without the slow scale tests
test-fast: $(STAMP) chromium postgres wrk
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy engine ui
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m 'not slow'

## bench: the benchmarks of bench/ (writes bench/RESULTS.md)
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

check: $(STAMP)
	$(BIN)/tidepool check apps/crm

## lint: ruff over the code and tests, mypy (strict, pyproject.toml) over the engine and UI
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy engine ui

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
