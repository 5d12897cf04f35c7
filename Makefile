# One entry point for developers and CI. `make dev` runs the product locally; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION := $(shell cat .python-version)
PYENV_ROOT ?= $(HOME)/.pyenv
BASE_PYTHON ?= $(shell command -v python$(basename $(PYTHON_VERSION)) 2>/dev/null || echo $(PYENV_ROOT)/versions/$(PYTHON_VERSION)/bin/python)
UV_VERSION := 0.13.8

VENV := .venv
TOOLS := .tools
PY := $(VENV)/bin/python
UV := $(TOOLS)/uv/bin/uv
SAM := $(TOOLS)/sam/bin/sam
CFN_LINT := $(TOOLS)/sam/bin/cfn-lint
CHECKOV := $(TOOLS)/checkov/bin/checkov

export SAM_CLI_TELEMETRY := 0
export PYENV_VERSION := $(PYTHON_VERSION)
# A build for the python3.13 runtime needs python3.13 on PATH (pyenv holds it).
export PATH := $(PYENV_ROOT)/versions/$(PYTHON_VERSION)/bin:$(PATH)

.PHONY: help install tools dev test lint typecheck template-checks sam-build build unit bench lock openapi deploy python-check reconcile replay-events usage-drift provision clean

help:
	@echo "make dev    - install, then run the whole product locally (no AWS, no Stripe, no Docker)"
	@echo "make test   - install, then run every check (lint, types, template checks, sam build, tests)"
	@echo "make build  - sam build, then bytecode for the runtime"
	@echo "make deploy - make build, then the project's pinned SAM CLI: sam deploy --guided (ARGS='--config-env prod' ...)"
	@echo "make bench  - cold-start and throughput benchmarks (ratios to a floor measured in the same run)"
	@echo "make lock   - re-resolve the pinned lock files after editing requirements/*.in"
	@echo "make openapi - regenerate docs/openapi.json (and the copy GET /openapi.json serves) from the handlers"
	@echo "make reconcile ARGS='--customer cus_...' (or --all) - re-project subscriptions from Stripe (docs/operations.md)"
	@echo "make replay-events ARGS='--days 30' - apply the Stripe events whose delivery failed (docs/operations.md)"
	@echo "make usage-drift ARGS='--day 2026-11-30 [--repair]' - compare usage sent with Stripe's meters (docs/operations.md)"
	@echo "make provision ARGS='--plan' (or --apply, --rotate-webhook-secrets) - Stripe set up as code (docs/operations.md)"

# Python 3.13 is the Lambda runtime's; without it, say so and how to get it (not a raw pyenv path error).
python-check:
	@$(BASE_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	  echo "tollgate needs Python $(basename $(PYTHON_VERSION)) (the Lambda runtime; .python-version says $(PYTHON_VERSION))," >&2; \
	  echo "and found none at '$(BASE_PYTHON)'. Get it with one of:" >&2; \
	  echo "  pyenv install $(PYTHON_VERSION)          (https://github.com/pyenv/pyenv#installation)" >&2; \
	  echo "  sudo apt install python3.13 python3.13-venv   (Debian/Ubuntu with 3.13 packaged)" >&2; \
	  echo "  brew install python@3.13                  (macOS)" >&2; \
	  echo "or point at one: make $(MAKECMDGOALS) BASE_PYTHON=/path/to/python3.13" >&2; \
	  exit 1; }

$(UV): | python-check
	@echo "==> first run: installing uv $(UV_VERSION) into $(TOOLS)/uv"
	$(BASE_PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The application environment: runtime + test + local-stack dependencies, exactly as locked.
$(VENV)/.installed: requirements/dev.lock $(UV)
	@echo "==> installing the application environment into $(VENV) (requirements/dev.lock; about a minute the first time)"
	test -x $(PY) || $(UV) venv --quiet --python $(BASE_PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) requirements/dev.lock
	touch $@

# Tool environments, each on its own pins.
$(TOOLS)/sam/.installed: requirements/sam.lock $(UV)
	@echo "==> installing the SAM CLI and cfn-lint into $(TOOLS)/sam (requirements/sam.lock)"
	test -x $(TOOLS)/sam/bin/python || $(UV) venv --quiet --python $(BASE_PYTHON) $(TOOLS)/sam
	$(UV) pip sync --quiet --python $(TOOLS)/sam/bin/python requirements/sam.lock
	touch $@

$(TOOLS)/checkov/.installed: requirements/checkov.lock $(UV)
	@echo "==> installing checkov into $(TOOLS)/checkov (requirements/checkov.lock)"
	test -x $(TOOLS)/checkov/bin/python || $(UV) venv --quiet --python $(BASE_PYTHON) $(TOOLS)/checkov
	$(UV) pip sync --quiet --python $(TOOLS)/checkov/bin/python requirements/checkov.lock
	touch $@
	@echo "==> $(VENV) ready"

install: $(VENV)/.installed
tools: $(TOOLS)/sam/.installed $(TOOLS)/checkov/.installed

lock: $(UV)
	$(UV) pip compile --quiet --python-version $(basename $(PYTHON_VERSION)) requirements/runtime.in -o layers/common/requirements.txt
	$(UV) pip compile --quiet --python-version $(basename $(PYTHON_VERSION)) requirements/dev.in -o requirements/dev.lock
	$(UV) pip compile --quiet --python-version $(basename $(PYTHON_VERSION)) requirements/sam.in -o requirements/sam.lock
	$(UV) pip compile --quiet --python-version $(basename $(PYTHON_VERSION)) requirements/checkov.in -o requirements/checkov.lock

# The HTTP API's OpenAPI document, generated from the checkout and portal handlers (tests/contract/ fails on drift).
openapi: install
	PYTHONPATH=layers/common $(PY) -m devstack.openapi

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	PYTHONPATH=layers/common $(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy

template-checks: tools
	$(SAM) validate --lint --template template.yaml
	$(CFN_LINT) template.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation --file template.yaml

sam-build: tools
	$(SAM) build --cached --parallel

# The deployable build. Lambda's /var/task and /opt are read-only, so modules without a matching .pyc are
# recompiled on every cold start (2x slower init, see bench/). Compile with the runtime's Python (3.13: same
# bytecode magic as Lambda's) and unchecked hashes, so the zip's file times never invalidate them.
build: sam-build
	$(BASE_PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build/

# Deploys with the SAM CLI make installed (.tools/sam, its own lock): the first time guided, which saves the answers
# to samconfig.toml; later: make deploy ARGS="--config-env staging" (or prod, which asks to confirm the change set).
DEPLOY_ARGS ?= $(if $(ARGS),$(ARGS),--guided)
deploy: build
	$(SAM) deploy $(DEPLOY_ARGS)

unit: install
	$(PY) -m pytest

# Two workers (one per core); a file's tests stay on one worker, so the long load files (the 10,000-event webhook
# storm, the 200 x 64 bursts) each get a core while the rest of the suite runs beside them.
PYTEST_WORKERS ?= 2

test: lint typecheck template-checks sam-build
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

dev: install
	$(PY) -m devstack

bench: install build
	$(PY) -m bench

# Runs with the functions' settings from the environment (TABLE_NAME, STRIPE_SECRET_ARN, ...) and AWS credentials.
reconcile: install
	PYTHONPATH=layers/common $(PY) -m tollgate.commands.reconcile $(ARGS)

# Applies the Stripe events whose delivery failed (the last 30 days), as the webhook would (docs/operations.md).
replay-events: install
	PYTHONPATH=layers/common $(PY) -m tollgate.commands.replay_events $(ARGS)

# Compares the usage ledger with Stripe's meter totals per customer, meter and day; --repair sends shortfalls.
usage-drift: install
	PYTHONPATH=layers/common $(PY) -m tollgate.commands.usage_drift $(ARGS)
# The reconciler the deploy runs, from an ops machine, with the same settings (STRIPE_SECRET_ARN, PLAN_CATALOG, ...).
provision: install
	PYTHONPATH=layers/common $(PY) -m tollgate.commands.provision $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .devstack .pytest_cache .mypy_cache .ruff_cache
