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

.PHONY: install chromium dev test lint typecheck template python313 build deploy pytest smoke openapi bench lock clean

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

test: install chromium lint typecheck template build pytest smoke

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy layers/common/llm_gateway cli/llm_gateway_cli cli/llm_gateway_local cli/llm_gateway_fake_provider functions

template: install
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

# sam builds for the python3.13 runtime without Docker, with the python3.13 it finds on PATH.
python313:
	@python3.13 --version > /dev/null 2>&1 || { echo "error: sam build needs a python3.13 on PATH" \
	  "(pyenv: pyenv install 3.13.0, or set PYENV_VERSION=<3.11 version>:<3.13 version>;" \
	  "otherwise install Python 3.13 from python.org or your package manager). See README, Deploying." >&2; exit 1; }

build: install python313
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template template.yaml --parallel --cached
	# Ship bytecode: nothing is compiled at cold start (unchecked-hash survives zip mtimes).
	python3.13 -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build > /dev/null

# First time: asks for the stack name, region, Stage and the Web Adapter layer ARN, and saves the
# answers in samconfig.toml. Later: `make deploy DEPLOY_ARGS=` deploys with the saved answers.
DEPLOY_ARGS ?= --guided
deploy: build
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam deploy $(DEPLOY_ARGS)

pytest: install chromium
	$(BIN)/pytest -n 2 --dist loadgroup -m "not smoke"

# The public-API end-to-end checks against any gateway: `make smoke API_URL=https://… API_KEY=llmgw_…`
# plus SMOKE_LLM_URL, SMOKE_LLM_KEY (and SMOKE_LLM_FORMAT, SMOKE_LLM_MODEL) for the LLM it registers.
# Without API_URL it starts `llm-gateway dev` and uses its fake provider. The key is never echoed.
smoke: install
	@SMOKE_API_URL='$(API_URL)' SMOKE_API_KEY='$(API_KEY)' $(BIN)/pytest -m smoke -n 0 tests/e2e

openapi: install
	$(BIN)/python -m llm_gateway_cli.openapi_export

bench: install build
	$(BIN)/python -m bench.run

lock:
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Full pinned lock of the development environment (pip freeze). Top-level intent: requirements/dev.in.' > requirements/dev.txt

clean:
	rm -rf $(VENV) .aws-sam
