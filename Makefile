# Two commands on a fresh machine: `make demo` and `make test` (each installs what it needs).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install bench lint
demo: $(VENV)/.installed
	$(VENV)/bin/tierbot demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -rs

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# The Wechaty end-to-end tests run a Node puppet service (tests/wechaty_gateway).
	if [ ! -d tests/wechaty_gateway/node_modules ] || \
	   [ tests/wechaty_gateway/node_modules -ot tests/wechaty_gateway/package-lock.json ]; then \
	  cd tests/wechaty_gateway && npm ci --no-audit --no-fund; \
	fi
	touch $@

bench: $(VENV)/.installed
	$(PY) bench/inbound.py

lint: $(VENV)/.installed
	$(PY) -m pip install -q ruff
	$(PY) -m ruff check bot handlers models schedules tests bench
