# Global Vision Warehouse — the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
# uv from PATH, else the one pip installs into $(PYTHON) (see the `uv` target).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
DAGSTER_PORT ?= 3000

export GVW_DATA_DIR ?= $(CURDIR)/data
export DAGSTER_HOME ?= $(GVW_DATA_DIR)/.dagster

DBT_SOURCES := $(shell find dbt_project -type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -not -path 'dbt_project/target/*' -not -path 'dbt_project/logs/*' 2>/dev/null)
DBT_MANIFEST := dbt_project/target/manifest.json

.PHONY: setup run test dev bench uv clean

uv:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv

# --compile-bytecode: every library is compiled to .pyc once, here. Python never has to compile
# dagster, dbt or great_expectations again at start-up (seconds per process; and with
# PYTHONDONTWRITEBYTECODE set, as on CI machines, it would compile them on every start).
.venv/.synced: pyproject.toml uv.lock | uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# The dbt manifest is prepared here, never at import time of the code location.
$(DBT_MANIFEST): .venv/.synced $(DBT_SOURCES)
	$(UV) run --frozen dagster-dbt project prepare-and-package --file orchestration/dbt_project.py
	@touch $@

setup: .venv/.synced $(DBT_MANIFEST)
	@$(UV) run --frozen python -m compileall -q orchestration
	$(UV) run --frozen gvw setup

run: setup
	$(UV) run --frozen gvw generate --if-empty
	$(UV) run --frozen gvw run

# Two test processes (pytest-xdist), one test file each at a time: most tests wait on dbt,
# Dagster or DuckDB subprocesses, and a file's module fixtures are built once. Serial on
# this 2-core machine: 16 min; two workers: 8 min (same code). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadfile

dev: setup
	$(UV) run --frozen dagster dev -w workspace.yaml -h 127.0.0.1 -p $(DAGSTER_PORT)

bench: setup
	$(UV) run --frozen python bench/run.py

clean:
	rm -rf .venv dbt_project/target dbt_project/logs
