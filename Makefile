# Bedrock Usage Control — every target does its own set-up (venv, dependencies, local services, schema).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup services migrate test test-fast test-cluster chaos lint demo deploy bench bench-cluster bench-enforcer clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/kcl.txt console/web/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	# The KCL jars come inside this wheel, pinned by hash (see requirements/kcl.txt and the README).
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements/kcl.txt
	# The console's browser scripts (htmx, Chart.js), exactly as the lockfile pins them; served by the console.
	command -v npm >/dev/null 2>&1 || bash infra/local/services.sh
	npm ci --prefix console/web --no-audit --no-fund --ignore-scripts --silent
	touch $(STAMP)

services:
	bash infra/local/services.sh

migrate: setup services
	$(BIN)/bedrockctl db migrate

# The whole suite: unit, integration (real Redis + MariaDB), aws (moto), e2e (the real KCL daemon).
test: setup services
	$(BIN)/pytest -q tests

# Everything but the KCL daemon end-to-end tests.
test-fast: setup services
	$(BIN)/pytest -q tests -m "not e2e"

# The end-to-end tests (the real KCL daemon) and the cluster's own tests on a Redis Cluster of three masters,
# started on free local ports by the tests themselves (redis-server and redis-cli on PATH; 6379 is not used).
test-cluster: setup services
	TEST_REDIS_CLUSTER=1 $(BIN)/pytest -q tests/e2e tests/integration/test_redis_cluster.py

# The fault-injection suite in its full form (the README's figures); make test runs its short form.
chaos: setup services
	CHAOS_FULL=1 $(BIN)/pytest -q -s tests/chaos -m chaos

lint: setup
	bash infra/local/tools.sh
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	promtool check config infra/prometheus/prometheus.yml
	promtool check rules infra/prometheus/alerts.yml
	promtool test rules infra/prometheus/alerts_test.yml
	$(BIN)/cfn-lint infra/cloudformation/*.yaml

# devtools/ is not installed (not shipped): run it as a module from the repository root.
demo: setup services
	$(BIN)/python -m devtools.demo

# Deploy the CloudFormation stack (see infra/deploy.sh for its parameters); AWS_ENDPOINT_URL for moto.
deploy: setup
	bash infra/deploy.sh

# Run as modules from the repository root: devtools/ and tests/ are not installed, only on its sys.path.
bench: setup services
	$(BIN)/python -m tests.performance.bench
	$(BIN)/python -m tests.performance.bench_enforcer
	$(BIN)/python -m tests.performance.bench_replay
	$(BIN)/python -m tests.performance.bench_console
	$(BIN)/python -m tests.performance.bench_tools

# The consumer's benchmark on a local Redis Cluster of three masters (figures beside `make bench`'s).
bench-cluster: setup services
	BENCH_REDIS_CLUSTER=1 $(BIN)/python -m tests.performance.bench

# Only the enforcer's part of the benchmark (decision → deny, PutRecord → deny).
bench-enforcer: setup services
	$(BIN)/python -m tests.performance.bench_enforcer

clean:
	rm -rf $(VENV) .local .mypy_cache .ruff_cache .pytest_cache *.egg-info
