# Two commands matter: `make demo` and `make test`. Both set up their own environment.
# An active virtualenv ($VIRTUAL_ENV) is used as it is; otherwise .venv is created here.
SHELL := /bin/bash
PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := $(CURDIR)/.venv
endif
BIN := $(VENV)/bin
# A change to the dependencies or to the lock re-installs.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

.PHONY: install lock test test-stack lint typecheck demo dist clean e2e-deps stack-deps stack bench bench-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

# uv resolves and installs the whole Airflow tree in seconds; pip would take half a minute.
# constraints.txt (the lock) holds every package at the version the tests passed with, so CI and a
# fresh clone install what was tested, not whatever is newest that day.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/uv
	$(BIN)/python -m uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[dev]"
	touch $@

install: $(STAMP)

# Regenerates constraints.txt from pyproject.toml's dependencies and the dev extra. Pins that still
# fit are kept; `make lock UPGRADE=--upgrade` takes the newest versions instead. Run `make test` after.
UPGRADE ?=
lock: | $(BIN)/uv
	$(BIN)/python -m uv pip compile --quiet --python $(BIN)/python --extra dev $(UPGRADE) \
		--custom-compile-command "make lock" pyproject.toml -o constraints.txt

LINTED := $(wildcard airflow_provider_mtp tests example_dags bench demo)

# lint-imports checks the import contract in .importlinter (the layers, and that the emulator stays apart).
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

# Debian's browser and driver for tests/e2e/test_browser.py (no tool that downloads its own browser).
e2e-deps:
	(command -v chromium && command -v chromedriver) >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)

# Debian's PostgreSQL and Redis for tests/stack/ (docker-compose.yaml's services as local processes).
stack-deps:
	(ls /usr/lib/postgresql/*/bin/postgres && command -v pg_isready && command -v redis-server && command -v redis-cli && command -v curl) >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql redis-server curl)

# docker-compose.yaml's services (Postgres, Redis, the emulator, Airflow with 2 Celery workers) as
# local processes, until Ctrl-C. Logs in tests/artifacts/stack/.
stack: install stack-deps
	$(BIN)/python -m tests.stack

# The crash and quota runs on the compose stack (tests/stack, marker `cluster`) take about 15 minutes:
# `make test-stack` runs them; `make test` runs the rest of tests/stack (the harness, a smoke run).
test: install lint typecheck e2e-deps stack-deps
	$(BIN)/python -m pytest -m "not cluster"

test-stack: install stack-deps
	$(BIN)/python -m pytest -m cluster tests/stack

# The peers bench/ compares against (Airflow's microsoft-azure provider, msgraph-sdk, azure-identity)
# live in .bench-venv, never in .venv or constraints.txt: this package under constraints.txt plus
# bench/requirements-peers.txt (the peers' exact versions).
BENCH_VENV := $(CURDIR)/.bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cat pyproject.toml constraints.txt bench/requirements-peers.txt | sha1sum | cut -c1-12)
$(BENCH_STAMP): pyproject.toml constraints.txt bench/requirements-peers.txt | $(BIN)/uv
	$(BIN)/python -m uv venv --quiet --allow-existing --python $(BIN)/python $(BENCH_VENV)
	$(BIN)/python -m uv pip install --quiet --python $(BENCH_VENV)/bin/python -c constraints.txt \
		-r bench/requirements-peers.txt -e . apache-airflow-providers-http
	touch $@

bench-venv: $(BENCH_STAMP)

# Issue 13's benchmarks, one after the other, each printing its table, ratios and MET / MISSED and
# writing bench/results/<name>.json (about 11-12 minutes on 2 cores). Not part of `make test`. A script
# not written yet is skipped with a message; one that fails is named at the end (exit 1).
BENCH_SCRIPTS := token_reuse paging hunting_storage triggerer_scale parse_cost emulator_speed
bench: install bench-venv
	@started=$$(date +%s); failed=""; \
	for name in $(BENCH_SCRIPTS); do \
		if [ ! -f bench/$$name.py ]; then echo "== bench/$$name.py does not exist yet: skipped"; continue; fi; \
		began=$$(date +%s); \
		$(BIN)/python bench/$$name.py || failed="$$failed $$name"; \
		echo "(bench/$$name.py: $$(( $$(date +%s) - began )) s)"; \
	done; \
	echo "make bench: $$(( $$(date +%s) - started )) s in all"; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

# Every example DAG against the emulator, in airflow-home/ and demo-output/ (see demo/__main__.py).
demo: install
	$(BIN)/python -m demo

.PHONY: demo-clean
demo-clean:
	rm -rf airflow-home demo-output

dist: install
	rm -rf dist && $(BIN)/python -m uv build --out-dir dist

clean:
	rm -rf dist build .pytest_cache .mypy_cache .ruff_cache airflow-home demo-output tests/artifacts
