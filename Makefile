# Everything installs itself into .venv: a fresh machine needs only Python 3.11,
# gcc, the PostgreSQL 15 server binaries (tests) and this repository.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench check lint clean chromium

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

## test: set up and run the whole suite (SQLite + a throwaway PostgreSQL, browser tests), slow tests included
test: $(STAMP) chromium
	$(BIN)/python -m pytest

## test-fast: the suite without the slow scale tests
test-fast: $(STAMP) chromium
	$(BIN)/python -m pytest -m 'not slow'

## bench: the benchmarks of bench/ (writes bench/RESULTS.md)
bench: $(STAMP)
	$(BIN)/python -m bench.run_all

check: $(STAMP)
	$(BIN)/tidepool check apps/crm

lint: $(STAMP)
	$(BIN)/ruff check engine apps ui tests bench

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
