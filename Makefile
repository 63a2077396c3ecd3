# Convene: `make run` serves the demo site, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
PYTEST_ARGS ?=

.PHONY: run install install-dev test qa lint format typecheck migrations-check worker beat bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## The site on embedded defaults: SQLite, tasks in-process, console email, demo data.
run: install
	$(MANAGE) migrate --no-input
	$(MANAGE) seed_demo
	$(MANAGE) runserver 127.0.0.1:8000

## The whole test suite, on real PostgreSQL and Redis (see tests/services.py).
test: install-dev
	$(BIN)/python -m tests.services $(BIN)/pytest $(PYTEST_ARGS)

## Sync benchmarks against Radicale, on the same PostgreSQL and Redis as the tests;
## results in var/bench/caldav_sync.json, to be recorded in docs/benchmarks.md.
bench: install-dev
	$(BIN)/python -m tests.services $(BIN)/pytest tests/benchmarks -m bench -q -s -p no:cacheprovider

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install-dev
	$(BIN)/mypy apps config

migrations-check: install-dev
	$(MANAGE) makemigrations --check --dry-run

qa: lint typecheck migrations-check test

## Production processes (configure the environment first; see README.md).
worker: install
	$(BIN)/celery -A config worker --queues default,sync,push,webhooks --loglevel INFO

beat: install
	$(BIN)/celery -A config beat --loglevel INFO

clean:
	rm -rf $(VENV) var
