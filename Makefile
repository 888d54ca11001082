# Henpin: `make up` runs the whole stack, `make test` runs the tests. See README.md.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `make test WORKERS=2`: the suite in two pytest-xdist processes, one test file each at a time
# (--dist loadfile keeps a module's shared fixtures, e.g. test_stack's one stack, in one process);
# each process starts its own Prefect server. 0: one process, as CI runs it.
WORKERS ?= 0

.PHONY: install lock browser up test unit screenshots lint typecheck check bench soak clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv with Henpin and its dev tools

lock: ## re-pin requirements.lock from a fresh venv of pyproject.toml (run after changing dependencies)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,3p' requirements.lock; .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^-e'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .venv-lock

browser: ## opt-in: Debian's Chromium for the real-browser test (installs system packages; .ci/run calls it)
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk)

up: $(STAMP) ## the whole stack: Prefect server, emulator + demo data (no credentials), runner, inbox
	$(BIN)/henpin up

test: $(STAMP) ## the test suite (PostgreSQL tests run when HENPIN_TEST_DATABASE_URL is set; WORKERS=2: in parallel)
	$(BIN)/python -m pytest -q -n $(WORKERS) --dist loadfile; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

screenshots: $(STAMP) ## refresh docs/screenshots (README, docs/inbox.md) from the browser test; commit them
	HENPIN_SCREENSHOTS=docs $(BIN)/python -m pytest -q tests/test_browser.py
unit: $(STAMP) ## the unit tests only: fast, no server or subprocess started (pytest -m "not e2e")
	$(BIN)/python -m pytest -q -m "not e2e"

bench: $(STAMP) ## benchmark against the emulator at Amazon's quotas (BENCH_QUICK=1: < 5 min)
	$(BIN)/python bench/run.py

soak: $(STAMP) ## many cases with random faults and kills; checks nothing lost or done twice
	$(BIN)/python bench/soak.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
