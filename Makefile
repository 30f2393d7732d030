# Two commands a person needs: `make dev` (run the pipeline locally) and `make test`
# (install everything and run every check). Everything else is what they call.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PORT ?= 8001

.PHONY: dev dev-deps test lint typecheck pytest client-test client-build bench clean lock

# A Python 3.13 or 3.12 for the venv; without one, make stops with one message (and no
# "command not found" after it). Expanded only by the recipes that need it.
BASE_PYTHON = $(or $(shell sh scripts/find_python.sh 2>/dev/null),$(error Python 3.13 or 3.12 is required: install one (for example 'pyenv install 3.13') and run make again))

# Every package comes from the hashed locks (requirements*.txt, made by `make lock` from
# requirements*.in). A lock that changed gets a new venv, so nothing it no longer names
# stays installed.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if [ -e $@ ]; then echo "make: the locks changed: making $(VENV) anew"; rm -rf $(VENV); fi
	@test -x $(PY) || "$(BASE_PYTHON)" -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.txt
	@touch $@

# Relocks after an edit of requirements*.in; `make lock UPGRADE="botocore boto3"` also
# moves the named packages to their newest versions the inputs allow.
lock: $(VENV)/.installed
	$(PY) scripts/lock.py $(UPGRADE)

client/node_modules/.installed: client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	@touch $@

client-build: client/node_modules/.installed
	cd client && npm run build

# Runs the API on $(HOST):$(PORT) with the dev stage (local sink under ./analytics_data,
# or $$ANALYTICS_DATA_DIR; the event inspector under /_dev/) and serves the demo page on
# $(DEMO_PORT), through scripts/dev.py: both ports are checked first (before any build),
# the URLs are printed once both answer, Ctrl-C stops both. RELOAD=1 restarts the API
# when app.py, chalicelib/ or .chalice/config.json change.
DEV_ARGS = --host $(HOST) --port $(PORT) --demo-port $(DEMO_PORT)
dev:
	@"$(BASE_PYTHON)" scripts/dev.py $(DEV_ARGS) --check-ports
	@$(MAKE) --no-print-directory dev-deps
	@$(PY) scripts/dev.py $(DEV_ARGS) $(if $(RELOAD),--reload)

dev-deps: $(VENV)/.installed client-build

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.installed
	$(VENV)/bin/pytest

client-test: $(VENV)/.installed client/node_modules/.installed
	cd client && npm test

# pytest last, so its summary line closes the output.
test: lint typecheck client-test pytest

bench: $(VENV)/.installed
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_export.py
	$(PY) bench/bench_hostile.py
	$(PY) bench/bench_amplification.py
	$(PY) bench/bench_inspector_memory.py
	$(PY) bench/bench_replay.py
	$(PY) bench/bench_dev_post.py
	$(PY) bench/bench_erase.py

clean:
	rm -rf $(VENV) client/node_modules client/dist .mypy_cache .ruff_cache .pytest_cache
