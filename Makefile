# Everything runs from a local virtualenv built from the repo's own requirement files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
# FC runtime the code package is built for: python3.10 or python3.12.
RUNTIME ?= python3.10

.PHONY: test lint unit run invoke emulator package bench clean

$(STAMP): requirements.txt requirements-dev.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## make test: lint, format check and the whole test suite
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make run: the Dyplsapi emulator plus a local FC HTTP trigger on 127.0.0.1:9000
run: $(STAMP)
	$(BIN)/python -m tools.localserver

## make emulator: only the Dyplsapi emulator (127.0.0.1:18021)
emulator: $(STAMP)
	$(BIN)/python -m tools.dypls_emulator

## make invoke EVENT=events/direct.json: run one event file through the handler against the emulator
invoke: $(STAMP)
	$(BIN)/python -m tools.invoke $(EVENT)

## make package [RUNTIME=python3.12] [PACKAGE_ARGS=--in-place]: the FC code package, no Docker
## (build/package/ by default; --in-place puts the dependencies in src/python/ for `s deploy`)
package: $(STAMP)
	$(BIN)/python tools/package.py --runtime $(RUNTIME) $(PACKAGE_ARGS)

clean:
	rm -rf .venv .venv-* build .pytest_cache .ruff_cache

## make bench: cold-start and warm-path latency against the emulator
bench: $(STAMP)
	$(BIN)/python -m tools.bench
