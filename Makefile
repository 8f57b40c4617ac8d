# make run: set up everything and serve https://localhost:8443.  make test: set up and run every test.
# The first run creates .venv (Python 3.11) and var/ (embedded PostgreSQL, TLS certificate,
# secrets, demo logins); later runs reuse them.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install setup run test lint typecheck check-deploy stop clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Custodia needs Python 3.11: install python3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "$(PYTHON) is not Python 3.11: run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Database server, roles, migrations, TLS certificate, static files, demo business; idempotent.
setup: install
	$(BIN)/custodia setup --demo

run: setup
	$(BIN)/custodia serve

# With DATABASE_URL set, the tests use <name>_test on that server; otherwise the embedded one.
test: install
	$(BIN)/custodia setup
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests

typecheck: install
	$(BIN)/mypy src

# The production settings must pass Django's deployment checks with no warning. Needs the
# variables production requires (see README.md, "Configuration").
check-deploy: install
	CUSTODIA_ENV=production $(BIN)/custodia check --deploy --fail-level WARNING

# Stop the embedded PostgreSQL (it keeps running between `make run`s so they start fast).
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -c 'import pathlib, sys; from custodia.embedded import stop_embedded; print("stopped" if stop_embedded(pathlib.Path(sys.argv[1])) else "not running")' "$${CUSTODIA_VAR_DIR:-var}/pgdata"; fi

clean: stop
	rm -rf $(VENV) var
