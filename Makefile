# chatvault - `make help` lists the targets. Two commands do everything: `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The app runs on Python 3.13 (Lambda's runtime); pyenv's 3.13 is used when present.
PY313 := $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3.13 $$(command -v python3.13); do \
  "$$p" -V >/dev/null 2>&1 && { echo "$$p"; break; }; done)
PYTHON ?= $(if $(PY313),$(PY313),python3)
VENV := .venv
BIN := $(VENV)/bin
# SAM CLI pins its own boto3/pydantic: it lives in a tools venv of its own.
SAM_VENV := .tools/sam
SAM := $(SAM_VENV)/bin/sam
SAM_VERSION := 1.170.0
CHECKOV_VENV := .tools/checkov
CHECKOV_VERSION := 3.3.30
# checkov does not expand Fn::ForEach (the per-function log groups and alarms): it reads the template
# as infra/template.py expands it, the way CloudFormation's AWS::LanguageExtensions transform does
CHECKOV_EXPANDED = $(BIN)/python -m infra.template > $(CHECKOV_VENV)/template.json && \
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f $(CHECKOV_VENV)/template.json
BENCH_VENV := .tools/bench
# sam build for python3.13 needs a python3.13 on PATH.
SAM_PATH := $(if $(PY313),$(dir $(PY313)):,)$(PATH)
export SAM_CLI_TELEMETRY := 0
export PORT ?= 3000
export MOTO_PORT ?= 5000
# make dev STAND_IN_DELAY_MS=800: the stand-in model waits that long before it answers
export STAND_IN_DELAY_MS ?= 0
# make dev BOT=echo: the example bot (examples/echo_bot) answers each user message, told by the message
# events; the chat routes are off (ModelId empty) unless PARAMETER_OVERRIDES names a ModelId
export BOT ?=

# What serving needs (make dev, invoke, admin, openapi): the layer's pins and the emulator ...
$(BIN)/.installed: requirements.txt layers/common/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

# ... and what testing adds (make test and the check targets)
$(BIN)/.test-installed: $(BIN)/.installed requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

# The browser side (clients/js, web/): npm's pinned devDependencies for the client's type check, and a
# Chromium for the browser tests (Debian's package; Playwright cannot download its own browser here).
NPM_DIR := clients/js
export CHROMIUM ?= /usr/bin/chromium
$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } || \
	  { echo "make: the client's type check needs Node.js 18+ and npm: install them (Debian: apt-get install nodejs npm)"; exit 1; }
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(SAM_VENV)/.installed:
	python3 -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed:
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

# LangChain, for the side-by-side benchmark only (its own venv: it is not a dependency of the service)
$(BENCH_VENV)/.installed:
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet langchain-community==0.4.2 langchain-core==1.7.2 boto3==1.44.5
	touch $@

.PHONY: help install chromium browser dev invoke admin test lint typecheck openapi cfn-lint checkov validate unit integration load bench build clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(BIN)/.test-installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(NPM_DIR)/node_modules/.installed chromium ## Create the dev venv (.venv), the tool venvs (.tools/), clients/js/node_modules; check for Chromium

chromium: ## Check for Chromium (CHROMIUM=<path>, default /usr/bin/chromium); install Debian's as root
	@test -x "$(CHROMIUM)" || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || \
	  { echo "make: the browser tests need Chromium at $(CHROMIUM): install it (Debian: apt-get install chromium) or set CHROMIUM=<path>"; exit 1; }
	@test -x "$(CHROMIUM)" || { echo "make: no Chromium at $(CHROMIUM): set CHROMIUM=<path of chromium or chrome>"; exit 1; }

dev: $(BIN)/.installed ## Serve the API and the demo page on 127.0.0.1:$PORT against moto on 127.0.0.1:$MOTO_PORT (in memory: stopping forgets everything)
	$(BIN)/python -m infra.local.dev

# invoke and admin: make exits 2 whenever the command fails, after the command's own message (and a
# line of make's own naming the command's exit code); the README lists the commands' codes.
invoke: $(BIN)/.installed ## Invoke one function on make dev's stack: make invoke FN=GetSessionFunction EVENT=tests/events/get_session.json [ENV=env.json] (a canned event runs on a session created for it: 200)
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<LogicalId> EVENT=<file> [ENV=<env.json>] [AS_IS=1]"; exit 2; }
	@$(BIN)/python -m infra.local.invoke $(FN) --event $(EVENT) $(if $(ENV),--env-vars $(ENV),) $(if $(AS_IS),--as-is,)

admin: $(BIN)/.installed ## Operator command: make admin ARGS="[--stack <name>] audit <session_id> | erase <session_id> | sweeps | restore-check | restore-copy --table T | seal-legacy"
	@PYTHONPATH=layers/common $(BIN)/python -m infra.admin $(ARGS)

openapi: $(BIN)/.installed ## Regenerate the OpenAPI document (layers/common/chatvault/openapi.json) from the code
	PYTHONPATH=layers/common:. $(BIN)/python -m infra.openapi

lint: $(BIN)/.test-installed ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.test-installed ## mypy (strict, pydantic plugin) over the layer, functions, Python client and example bot
	$(BIN)/mypy layers/common/chatvault $(wildcard functions/*/app.py) clients/python/chatvault_client examples/echo_bot

cfn-lint: $(BIN)/.test-installed ## cfn-lint over template.yaml
	$(BIN)/cfn-lint template.yaml

checkov: $(BIN)/.installed $(CHECKOV_VENV)/.installed ## checkov over template.yaml, its loops expanded (offline); skipped checks are justified in .checkov.yaml or beside their resource
	$(CHECKOV_EXPANDED)

validate: $(SAM_VENV)/.installed ## sam validate --lint
	AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint

unit: $(BIN)/.test-installed ## Unit tests (in-process moto) and the template's tests
	$(BIN)/pytest tests/unit tests/infrastructure -q

integration: $(BIN)/.test-installed ## Handler tests under moto, and HTTP tests against the local stack
	$(BIN)/pytest tests/integration -q

browser: $(BIN)/.test-installed $(NPM_DIR)/node_modules/.installed chromium ## The demo page and the JS client in headless Chromium, and the client's type check
	$(BIN)/pytest tests/browser -q

load: $(BIN)/.test-installed ## Bounded load test on the local stack (loopback): throughput, errors, lost messages
	$(BIN)/pytest tests/integration/test_load.py -q -s -p no:randomly

bench: $(BIN)/.test-installed $(BENCH_VENV)/.installed ## Benchmarks: writes tests/benchmarks/report.md and report.json
	$(BIN)/python -m tests.benchmarks.run

build: $(SAM_VENV)/.installed ## sam build (arm64 layer, python3.13)
	PATH="$(SAM_PATH)" $(SAM) build --cached --parallel

test: $(BIN)/.test-installed $(SAM_VENV)/.installed $(CHECKOV_VENV)/.installed $(NPM_DIR)/node_modules/.installed chromium ## Install everything, then every test and check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/common/chatvault $(wildcard functions/*/app.py) clients/python/chatvault_client examples/echo_bot
	$(BIN)/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 $(SAM) validate --lint
	$(CHECKOV_EXPANDED)
	SAM="$(abspath $(SAM))" SAM_PATH="$(SAM_PATH)" $(BIN)/pytest tests -q -m "not e2e"

clean: ## Remove build output and venvs
	rm -rf .aws-sam $(VENV) .tools .mypy_cache .ruff_cache .pytest_cache $(NPM_DIR)/node_modules
