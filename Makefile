# make run: set up everything and serve https://localhost:8443.  make test: set up and run every test.
# The first run creates .venv (Python 3.11) and var/ (embedded PostgreSQL, TLS certificate,
# secrets, demo logins); later runs reuse them.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install setup run test lint typecheck check-deploy stop clean scan bench fullcalendar

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Custodia needs Python 3.11: install python3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { echo "$(PYTHON) is not Python 3.11: run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# FullCalendar (npm, MIT) draws the manager's calendar (docs/visits.md): installed from the npm
# registry into var/fullcalendar and served as static files (settings.STATICFILES_DIRS), never
# committed. Version 7 ships plain CSS files, which the strict CSP allows (v6 injects a <style>).
FULLCALENDAR := var/fullcalendar/node_modules/fullcalendar/all/global.js
FULLCALENDAR_VERSION := ~7.1.5
$(FULLCALENDAR):
	@command -v npm >/dev/null || { echo "npm is missing (FullCalendar for the calendar page). Run: sudo apt-get install -y npm" >&2; exit 1; }
	npm install --prefix var/fullcalendar --no-save --no-audit --no-fund --silent fullcalendar@$(FULLCALENDAR_VERSION)
	@test -f $@ || { echo "FullCalendar did not install into var/fullcalendar" >&2; exit 1; }
fullcalendar: $(FULLCALENDAR)

# Database server, roles, migrations, TLS certificate, static files, demo business; idempotent.
setup: install $(FULLCALENDAR)
	$(BIN)/custodia setup --demo

run: setup
	$(BIN)/custodia serve

# With DATABASE_URL set, the tests use <name>_test on that server; otherwise the embedded one.
# pgserver's PostgreSQL 16.2 programs, which made earlier installs' var/pgdata: the test of
# `custodia upgrade-embedded` (tests/test_embedded.py) upgrades such a directory with them.
# Fetched once from PyPI and unpacked, never installed.
OLD_PG := var/old-postgres
OLD_PG_BIN := $(OLD_PG)/pgserver/pginstall/bin
$(OLD_PG_BIN)/postgres: | install
	$(BIN)/python -m pip download --quiet --no-deps --only-binary :all: 'pgserver==0.1.4' -d $(OLD_PG)
	$(BIN)/python -m zipfile -e $(OLD_PG)/pgserver-0.1.4-*.whl $(OLD_PG)
	chmod +x $(OLD_PG_BIN)/*  # zipfile keeps no modes

# The browser tests drive Debian's Chromium (never a downloaded browser); they are never skipped,
# so a machine without it gets it here (apt, with sudo when not root) or stops with the command.
CHROMIUM := /usr/bin/chromium
CHROMIUM_INSTALL := apt-get install -y --no-install-recommends chromium
$(CHROMIUM):
	@echo "Installing Chromium for the browser tests ($(CHROMIUM_INSTALL))"
	@as_root=; [ "$$(id -u)" -eq 0 ] || as_root="sudo -n"; export DEBIAN_FRONTEND=noninteractive; \
	  $$as_root $(CHROMIUM_INSTALL) -qq >/dev/null 2>&1 \
	  || { $$as_root apt-get update -qq && $$as_root $(CHROMIUM_INSTALL) -qq >/dev/null; } \
	  || { echo "Could not install Chromium. Run: sudo apt-get update && sudo $(CHROMIUM_INSTALL)" >&2; exit 1; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing. Run: sudo $(CHROMIUM_INSTALL)" >&2; exit 1; }

# The pgbackrest engine's test (tests/lifecycle/test_pgbackrest.py) drives Debian's pgbackrest
# against a throwaway cluster of Debian's PostgreSQL 15 programs (Debian 12's pgbackrest 2.45
# supports up to 15); never skipped, so a machine without them gets them here, as Chromium.
PGBACKREST := /usr/bin/pgbackrest
PG15_SERVER := /usr/lib/postgresql/15/bin/postgres
PGBACKREST_INSTALL := apt-get install -y --no-install-recommends pgbackrest postgresql-15
$(PGBACKREST) $(PG15_SERVER):
	@echo "Installing pgbackrest and PostgreSQL 15 for the backup tests ($(PGBACKREST_INSTALL))"
	@as_root=; [ "$$(id -u)" -eq 0 ] || as_root="sudo -n"; export DEBIAN_FRONTEND=noninteractive; \
	  $$as_root $(PGBACKREST_INSTALL) -qq >/dev/null 2>&1 \
	  || { $$as_root apt-get update -qq && $$as_root $(PGBACKREST_INSTALL) -qq >/dev/null; } \
	  || { echo "Could not install them. Run: sudo apt-get update && sudo $(PGBACKREST_INSTALL)" >&2; exit 1; }
	@test -x $@ || { echo "$@ is still missing. Run: sudo $(PGBACKREST_INSTALL)" >&2; exit 1; }

# axe-core (npm) runs in the browser tests' pages (tests/e2e/test_every_page.py): accessibility
# findings of serious or critical impact fail them. Installed from the npm registry, never committed.
AXE := var/axe/node_modules/axe-core/axe.min.js
AXE_VERSION := ^4.10
$(AXE):
	@command -v npm >/dev/null || { echo "npm is missing (axe-core for the browser tests). Run: sudo apt-get install -y npm" >&2; exit 1; }
	npm install --prefix var/axe --no-save --no-audit --no-fund --silent axe-core@$(AXE_VERSION)
	@test -f $@ || { echo "axe-core did not install into var/axe" >&2; exit 1; }

test: install $(OLD_PG_BIN)/postgres $(CHROMIUM) $(PGBACKREST) $(PG15_SERVER) $(AXE) $(FULLCALENDAR)
	$(BIN)/custodia setup
	CUSTODIA_OLD_PG_BIN=$(CURDIR)/$(OLD_PG_BIN) $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy src

# The production settings must pass Django's deployment checks with no warning. Needs the
# variables production requires (see README.md, "Configuration").
check-deploy: install
	CUSTODIA_ENV=production $(BIN)/custodia check --deploy --fail-level WARNING

# Benchmarks (bench/README.md): ratios against baselines measured in the same run, on a generated
# dataset in its own database. Quick profile ~5 minutes; FULL=1 loads 2M clients (~12 minutes).
bench: install $(FULLCALENDAR)
	@command -v wrk >/dev/null 2>&1 || { \
	  as_root=; [ "$$(id -u)" -eq 0 ] || as_root=sudo; \
	  DEBIAN_FRONTEND=noninteractive $$as_root apt-get install -y -qq --no-install-recommends wrk >/dev/null \
	  || { $$as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$as_root apt-get install -y -qq --no-install-recommends wrk >/dev/null; }; }
	@$(BIN)/python -c 'import matplotlib, pyotp' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/custodia setup
	$(BIN)/python -m bench.run $(if $(FULL),--full,)

# External attack scanners against a throwaway live instance (scan/README.md): installs them into
# .venv-scan and .venv-scan-wapiti, prints a summary table, writes scan/reports/, fails on any
# finding of medium severity or above. Quick profile by default; `make scan FULL=1` runs all.
scan: install
	scan/install.sh "$(PYTHON)"
	$(BIN)/python -m scan.run $(if $(FULL),--full)

# Stop the embedded PostgreSQL (it keeps running between `make run`s so they start fast).
stop:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -c 'import pathlib, sys; from custodia.embedded import stop_embedded; print("stopped" if stop_embedded(pathlib.Path(sys.argv[1])) else "not running")' "$${CUSTODIA_VAR_DIR:-var}/pgdata"; fi

clean: stop
	rm -rf $(VENV) var
