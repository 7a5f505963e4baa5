# Entry points: `make run` (the ClientActor shell), `make cluster-demo` (the shell on three nodes,
# with local NATS and PostgreSQL servers) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run cluster-demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint,bench,cluster]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m examples.client $(ARGS)

cluster-demo: $(STAMP)
	$(BIN)/python -m examples.cluster_demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m benchmarks all $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
