# orgkms - everything runs from a local virtualenv that this Makefile creates.
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# Lambda runs Python 3.12: prefer a 3.12 interpreter so `sam build` finds python3.12 on PATH.
PYTHON ?= $(shell for p in python3.12 $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3; do \
            $$p -c 'import sys; assert sys.version_info >= (3, 11)' >/dev/null 2>&1 && { echo $$p; break; }; done)
export PATH := $(abspath $(BIN)):$(PATH)
export SAM_CLI_TELEMETRY := 0
export ORGKMS_PROJECT_ROOT := $(CURDIR)
# checkov pins versions of boto3 and packaging that aws-sam-cli and pytest cannot share: it gets
# a virtualenv of its own.
IAC_VENV ?= .venv-iac
CHECKOV_VERSION := 3.3.30

.PHONY: install demo test lint typecheck pytest sam-validate sam-build iac stress-full schemas bench serve clean

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "need Python 3.11+ (3.12 preferred)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

## make demo: the control plane creates orgs on the embedded stack; their files stay apart.
demo: install
	$(BIN)/orgkms demo

## make test: lint, types, the test tiers, template validation and a real `sam build`.
test: install lint typecheck pytest sam-validate sam-build iac

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest -q

sam-validate: install
	$(BIN)/sam validate --lint

sam-build: install
	$(BIN)/sam build

## make iac: cfn-lint and checkov on template.yaml; accepted findings are skipped in the
## template's Metadata with their reasons, so any finding left fails.
iac: install $(IAC_VENV)/bin/checkov
	$(BIN)/cfn-lint template.yaml
	BC_SKIP_MAPPING=TRUE $(IAC_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--skip-download --compact --quiet

$(IAC_VENV)/bin/checkov:
	$(PYTHON) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'

## make stress-full: the stress tier at full size (about half an hour), figures at the end.
stress-full: install
	ORGKMS_STRESS=full $(BIN)/pytest tests/stress -m stress -s -q -p no:cacheprovider \
		--timeout=3600 -o log_cli=false

schemas: install
	$(BIN)/python -m orgkms.models schemas

bench: install
	$(BIN)/python bench/run.py

serve: install
	$(BIN)/orgkms local serve

clean:
	rm -rf $(VENV) $(IAC_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
