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
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install test lint typecheck demo dist clean e2e-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv resolves and installs the whole Airflow tree in seconds; pip would take half a minute.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/python -m uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $@

install: $(STAMP)

LINTED := $(wildcard airflow_provider_mtp tests example_dags bench demo)

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

typecheck: install
	$(BIN)/mypy

# Debian's browser and driver for tests/e2e/test_browser.py (no tool that downloads its own browser).
e2e-deps:
	(command -v chromium && command -v chromedriver) >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver)

test: install lint typecheck e2e-deps
	$(BIN)/python -m pytest

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
