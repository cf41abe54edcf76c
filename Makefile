# Two commands on a fresh machine: `make demo` and `make test` (each installs what it needs).
# `make demo` needs Python 3.11 only; Node and the npm registry are for the Wechaty end-to-end
# tests of `make test` alone. `make test-quick` leaves out the slow suites (Wechaty end to end,
# crashes and signals, browsers): use it while working, `make test` before pushing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY_VERSION := 3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# pytest-xdist workers: each has its own SQLite template and PostgreSQL database.
WORKERS ?= 2

.PHONY: demo test test-quick install bench lint venv-rebuild
demo: $(VENV)/.installed
	$(VENV)/bin/tierbot demo

test: $(VENV)/.installed tests/wechaty_gateway/node_modules/.installed
	$(PY) -m pytest -q -rs -n $(WORKERS)

test-quick: $(VENV)/.installed
	$(PY) -m pytest -q -rs -n $(WORKERS) -m "not e2e and not crash and not browser"

install: $(VENV)/.installed

IS_PY := import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(PY_VERSION)".split("."))))
# A venv made by another Python (an older python3, a removed pyenv version) is rebuilt.
VENV_WRONG := $(shell [ -e $(VENV) ] && ! $(PY) -c '$(IS_PY)' >/dev/null 2>&1 && echo yes)

venv-rebuild:

$(VENV)/.installed: pyproject.toml $(if $(VENV_WRONG),venv-rebuild)
	@$(PYTHON) -c '$(IS_PY)' || { echo "make: $(PYTHON) is not Python $(PY_VERSION); install it" \
	  "or run make PYTHON=/path/to/python$(PY_VERSION)" >&2; exit 1; }
	@if [ -n "$(VENV_WRONG)" ]; then \
	  echo "make: $(VENV) was not made by Python $(PY_VERSION): rebuilding it" >&2; \
	  rm -rf $(VENV); \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The Wechaty end-to-end tests run a Node puppet service (tests/wechaty_gateway).
tests/wechaty_gateway/node_modules/.installed: tests/wechaty_gateway/package-lock.json
	cd tests/wechaty_gateway && npm ci --no-audit --no-fund
	touch $@

bench: $(VENV)/.installed
	$(PY) bench/inbound.py

lint: $(VENV)/.installed
	$(PY) -m pip install -q ruff mypy
	$(PY) -m ruff check bot handlers models schedules tests bench
	$(PY) -m mypy
