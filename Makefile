# Soku: the two commands of the README, and the pieces they are made of.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck pytest bench clean

## run: install, create a demo user, key and sandbox accounts, then serve on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/soku quickstart --host $${SOKU_HOST:-127.0.0.1} --port $${SOKU_PORT:-8000}
	$(BIN)/soku serve --host $${SOKU_HOST:-127.0.0.1} --port $${SOKU_PORT:-8000}

## test: install with the dev tools, then ruff, mypy (strict) and the whole pytest suite
test: $(STAMP) lint typecheck pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Soku needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/ruff format --check src tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/accept.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .hypothesis
