# make run: set up everything and serve https://localhost:8443.  make test: set up and run every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install setup run test lint typecheck check-deploy clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

setup: install
	$(BIN)/custodia setup --demo

run: setup
	$(BIN)/custodia serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests

typecheck: install
	$(BIN)/mypy src

clean:
	rm -rf $(VENV) var
