# qcbot: two commands on a fresh machine.
#   make run   - virtualenv, install, migrate, load the seed if empty, start the bot
#   make test  - virtualenv, install dev extras, run the suite on SQLite, then PostgreSQL
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres bench lint install clean fuzz-long

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/qcbot run

test: $(STAMP)
	$(MAKE) --no-print-directory test-sqlite
	@if $(BIN)/python -c "import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$(TEST_DATABASE_URL)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else \
		echo "PostgreSQL at $(TEST_DATABASE_URL) does not answer: skipped the PostgreSQL run."; \
	fi

test-sqlite: $(STAMP)
	@echo "== suite on SQLite =="
	env -u TEST_DATABASE_URL $(BIN)/pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "== suite on PostgreSQL ($(TEST_DATABASE_URL)) =="
	TEST_DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# Benchmarks at province scale (SQLite, then PostgreSQL if it answers): see BENCHMARKS.md.
#   make bench                      full run (≤ 15 min on 2 cores)
#   make bench BENCH_ARGS=--quick   fewer samples, smaller dispatch and burst
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# The fault soak: SIGKILL the bot during dispatch and a burst, restart, check nothing is lost.
SOAK_ARGS ?=
.PHONY: soak
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(SOAK_ARGS)
