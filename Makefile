# Two commands a person needs: `make dev` (run the pipeline locally) and `make test`
# (install everything and run every check). Everything else is what they call.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PORT ?= 8001

.PHONY: dev dev-deps test lint typecheck pytest client-test client-build bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || "$$(sh scripts/find_python.sh)" -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

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
	@"$$(sh scripts/find_python.sh)" scripts/dev.py $(DEV_ARGS) --check-ports
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
	$(PY) bench/bench_replay.py
	$(PY) bench/bench_report.py
	$(PY) bench/bench_dev_post.py

clean:
	rm -rf $(VENV) client/node_modules client/dist .mypy_cache .ruff_cache .pytest_cache
