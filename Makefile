# One command surface for people and CI. `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
STACK := python3 deploy/local/stack.py
PYTEST_ARGS ?=

.PHONY: help install lint format typecheck test test-unit test-integration test-browser test-monitoring test-reliability test-faults up down status infra-up demo schemas dashboards bench bench-sustained clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip wheel setuptools
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: .venv/.installed ## create .venv and install the project with its dev tools

lint: install ## ruff (lint and format check)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## apply ruff's formatting and fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: install ## mypy (strict for shared/ and services/)
	$(PY) -m mypy

test: lint typecheck ## ruff, mypy and every test against real Kafka and PostgreSQL (starts and stops them)
	deploy/local/run-tests.sh $(PYTEST_ARGS)

test-unit: install ## only the unit tests (no services needed)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install ## only the integration tests
	deploy/local/run-tests.sh -m integration $(PYTEST_ARGS)

test-reliability: install ## the reliability suite: fuzzing, poison messages, faults on a private stack, sustained load (RELIABILITY_LONG=1: long version)
	deploy/local/run-tests.sh tests/reliability $(PYTEST_ARGS)

test-faults: install ## fault injection only (broker/database restarts, SIGTERM, load) on a private stack, ports 20000-31999
	$(PY) -m pytest tests/reliability/faults $(PYTEST_ARGS)

test-browser: install ## browser tests of the console (needs `make up && make demo`)
	set -a && source .stack/env && set +a && $(PY) -m pytest tests/browser $(PYTEST_ARGS)

test-monitoring: install ## Prometheus scrapes the stack, every Grafana query answers (needs `make up && make demo`)
	set -a && source .stack/env && set +a && $(PY) -m pytest tests/integration/monitoring $(PYTEST_ARGS)

infra-up: install ## start Kafka and PostgreSQL and apply migrations (no services)
	$(STACK) infra-up

up: install ## start Kafka, PostgreSQL, migrations and every service; writes .stack/env
	$(STACK) up

demo: up ## start the stack, run a simulated experiment (~20,000 executions) and print the report
	set -a && source .stack/env && set +a && $(PY) -m deploy.demo $(DEMO_ARGS)

down: ## stop everything `make up` started
	$(STACK) down

status: ## what of the local stack is running
	$(STACK) status

schemas: install ## regenerate the JSON Schemas of the event contracts
	$(PY) -m shared.jsonschemas --write

dashboards: ## regenerate the Grafana dashboards and the local Prometheus configuration
	python3 deploy/grafana/build_dashboards.py
	python3 deploy/prometheus/render_local.py

bench: install ## run every benchmark (each prints one JSON object on its last line)
	set -a && source .stack/env && set +a && for b in bench/assignment.py bench/aggregator.py bench/analysis.py; do $(PY) $$b || exit 1; done

bench-sustained: install ## 60 s of assignment traffic at 80% of its maximum + 1,000 events/s (BENCH_ARGS=--private: own stack)
	$(PY) bench/sustained_load.py $(BENCH_ARGS)

clean: ## stop the stack and remove its state (.stack, and PostgreSQL's folder when it lives under the temporary directory)
	$(STACK) clean
