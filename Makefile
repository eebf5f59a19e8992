# Every command a developer needs. `make dev` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# sam build targets python3.13 without Docker: pyenv must expose a python3.13 next to 3.11.
export PYENV_VERSION ?= 3.11.7:3.13.0
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: install chromium dev test lint typecheck template build pytest openapi bench lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.txt layers/common/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The browser tests drive the system Chromium (Debian's package): installed here when missing,
# as CI starts from a fresh machine. Playwright's own browser download is never used.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

dev: install
	$(BIN)/llm-gateway dev

test: install chromium lint typecheck template build pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy layers/common/llm_gateway cli/llm_gateway_cli functions

template: install
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

build: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml --parallel --cached
	# Ship bytecode: nothing is compiled at cold start (unchecked-hash survives zip mtimes).
	python3.13 -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build > /dev/null

pytest: install chromium
	$(BIN)/pytest -n 2 --dist loadgroup

openapi: install
	$(BIN)/python -m llm_gateway_cli.openapi_export

bench: install build
	$(BIN)/python -m bench.run

lock:
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full pinned lock of the development environment (pip freeze). Top-level intent: requirements/dev.in.' > requirements/dev.txt

clean:
	rm -rf $(VENV) .aws-sam
