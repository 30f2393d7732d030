# Two commands a person needs: `make dev` (run the pipeline locally) and `make test`
# (install everything and run every check). Everything else is what they call.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_PORT ?= 8001

.PHONY: dev test lint typecheck pytest client-test client-build bench clean

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
# or $$ANALYTICS_DATA_DIR) and serves the demo page on $(DEMO_PORT). Ctrl-C stops both.
dev: $(VENV)/.installed client-build
	@echo "demo page: http://$(HOST):$(DEMO_PORT)/demo/?api=http://$(HOST):$(PORT)/events"
	@echo "API:       http://$(HOST):$(PORT)/events   data: $${ANALYTICS_DATA_DIR:-analytics_data}/"
	@$(PY) -m http.server --bind $(HOST) --directory client $(DEMO_PORT) >/dev/null 2>&1 & \
	  demo=$$!; trap "kill $$demo" EXIT INT TERM; \
	  $(VENV)/bin/chalice local --stage dev --host $(HOST) --port $(PORT)

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

clean:
	rm -rf $(VENV) client/node_modules client/dist .mypy_cache .ruff_cache .pytest_cache
