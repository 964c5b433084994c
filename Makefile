# Everyday entry points. Each target installs what it needs, so these work on a fresh machine.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo run cluster cluster-down test test-quick test-prereqs lint bench-intake image image-test clean

$(BIN)/mergeway: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/mergeway

## The GitOps story end to end on built-in defaults (tools/demo.py): a reviewed scale-up, a failed rollout, /rollback.
demo: venv
	@bash tools/redis/ensure.sh
	$(BIN)/python tools/demo.py

## Start the local Kubernetes cluster (built once, cached under ~/.cache/mergeway); prints KUBECONFIG=...
cluster: venv
	@$(BIN)/python tools/cluster/localcluster.py up

## Stop every process the local cluster started and remove its state.
cluster-down: venv
	@$(BIN)/python tools/cluster/localcluster.py down

## Run Redis, the web service and a worker on built-in defaults, against the local cluster.
run: venv
	@bash tools/run.sh

## The test suite, against real Redis and the real local cluster. Prepares everything the tests need
## first (as .ci/run does), so pytest's per-test timeout never counts an ~8-minute cold cluster build.
test: test-prereqs
	$(BIN)/pytest $(PYTEST_ARGS)

## The quick subset: no Redis, no cluster, no fault injection (markers added in tests/conftest.py).
test-quick: venv
	$(BIN)/pytest -m 'not redis and not cluster and not faults' $(PYTEST_ARGS)

## Redis, Chromium (the page's browser tests), GitHub's API descriptions for the conformance tests, the cluster binaries and helm (cached).
test-prereqs: venv
	@bash tools/redis/ensure.sh
	@bash tools/browser/ensure.sh
	$(BIN)/python tools/conformance/fetch.py
	@bash tools/cluster/build.sh >/dev/null

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## The intake benchmark (20,000+ signed webhooks through gunicorn as in the Procfile).
bench-intake: venv
	@bash tools/redis/ensure.sh
	$(BIN)/python bench/intake.py

## The container image, with buildah (no Docker daemon); from Debian packages when no registry is reachable.
image:
	@bash tools/image/build.sh

## Run the image with podman: web answers /healthz, the worker connects to Redis, `mergeway preview`
## inside it against the local cluster (started by make cluster when not running) masks a Secret.
image-test: venv
	@bash tools/redis/ensure.sh
	@bash tools/image/test.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
