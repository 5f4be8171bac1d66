# Everything runs from a local virtualenv built from the repo's own requirement files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-amqp.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# FC runtime the code package is built for: python3.10 or python3.12.
RUNTIME ?= python3.10

# make unit: pytest-xdist workers, one per core (auto); PYTEST_JOBS=0 runs the suite in one process.
PYTEST_JOBS ?= auto

# make run: ports of the local HTTP trigger and of the emulator
PORT ?= 9000
EMULATOR_PORT ?= 18021

.PHONY: help test lint unit run invoke emulator package bench mutate predeploy clean loadfault openapi registry

## make help: list the targets and what they do
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

# make bench: a python3.10 venv (the FC runtime's Python, found as tools/package.py finds it)
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cat requirements.txt bench/requirements.txt | cksum | cut -d' ' -f1)
BENCH_PYTHON ?= $(shell $(PYTHON) -c "from tools.package import find_python; print(find_python('3.10') or '')")

$(BENCH_STAMP): requirements.txt bench/requirements.txt
	@if [ -z "$(BENCH_PYTHON)" ]; then \
	  echo "make bench needs Python 3.10, the FC runtime's (pyenv install 3.10)" >&2; exit 2; fi
	rm -rf $(BENCH_VENV)
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r bench/requirements.txt
	touch $@

$(STAMP): requirements.txt requirements-amqp.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## make test: lint, format check and the whole test suite
test: lint unit

## make lint: ruff check and ruff format --check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make unit [PYTEST_ARGS=…] [PYTEST_JOBS=…]: only the test suite (pytest, PYTEST_JOBS processes at once; 0: in one)
#  Each pytest-xdist worker has its own redis-server (or database of AXN_TEST_REDIS_URL),
#  emulator, ports and RabbitMQ names.
unit: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) $(PYTEST_ARGS)

## make run [PORT=9000] [EMULATOR_PORT=18021]: the Dyplsapi emulator plus the function behind a local HTTP trigger
run: $(STAMP)
	$(BIN)/python -m tools.localserver --port $(PORT) --emulator-port $(EMULATOR_PORT)

## make emulator [EMULATOR_PORT=18021]: only the Dyplsapi emulator
emulator: $(STAMP)
	$(BIN)/python -m tools.dypls_emulator --port $(EMULATOR_PORT)

## make invoke EVENT=events/direct.json: run one event file through the handler against the emulator
invoke: $(STAMP)
	@if [ -z "$(EVENT)" ]; then \
	  echo "make invoke needs an event file: make invoke EVENT=events/<file>.json" >&2; \
	  echo "samples: $$(cd events && ls *.json | tr '\n' ' ')" >&2; exit 2; fi
	$(BIN)/python -m tools.invoke $(EVENT)

## make package [RUNTIME=python3.12] [PACKAGE_ARGS=--in-place]: the FC code package, no Docker
#  (build/package/ by default; --in-place puts the dependencies in src/python/ for `s deploy`)
package: $(STAMP)
	$(BIN)/python tools/package.py --runtime $(RUNTIME) $(PACKAGE_ARGS)

## make predeploy: the check s deploy runs first (memory store, empty pool, a Redis that may lose records)
predeploy: $(STAMP)
	$(BIN)/python tools/predeploy.py

## make registry: build/registry/, the Serverless Devs application template (publish.yaml, src/ with s.yaml and the code, readme.md, version.md), and build/registry.zip for `s init --uri`
registry: $(STAMP)
	$(BIN)/python tools/registry.py

## make openapi [OPENAPI_ARGS=--check]: write docs/openapi.json, the HTTP API's OpenAPI 3.1 contract, from the code (--check: fail when it is stale)
openapi: $(STAMP)
	$(BIN)/python -m tools.openapi $(OPENAPI_ARGS)

## make clean: remove the virtualenvs, build output and caches
clean:
	rm -rf .venv .venv-* build .pytest_cache .ruff_cache

## make bench [BENCH_ARGS="--pairs 11 --json out.json"]: the function against the official SDK (cold, warm, HTTP); see bench/README.md
#  Not part of make test. Its own python3.10 venv (.venv-bench: requirements.txt +
#  bench/requirements.txt); the SDK never enters requirements.txt or requirements-dev.txt.
bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)

## make mutate [MUTATE_ARGS=--named]: mutation check of the bind path, about 40 minutes (--named: only the named rule mutants, about a minute)
mutate: $(STAMP)
	$(BIN)/python -m tools.mutate $(MUTATE_ARGS)

## make loadfault [LOADFAULT_ARGS="--json out.json"]: about a minute of concurrent load on 2 local instances sharing a private Redis, faults in turn; fails on an unnamed double binding or a lost result
#  Needs redis-server on PATH. Options: python -m tools.loadfault --help (--orders, --concurrency,
#  --phase-seconds, --phases, --servers, --instance-concurrency, --unknown-outcome, …).
loadfault: $(STAMP)
	$(BIN)/python -m tools.loadfault $(LOADFAULT_ARGS)
