# The two commands: `make demo` and `make test`. Both build .venv first through `make setup`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/pip install -q -c constraints.txt -e '.[dev]' --config-settings editable_mode=strict

.PHONY: setup test lint typecheck pytest demo bench clean

setup:
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@flock $(VENV)/.install.lock $(PIP_INSTALL)
	@$(BIN)/hedgerow version

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy --strict -p hedgerow.net -p hedgerow.protocols

pytest: setup
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: lint typecheck pytest

demo: setup
	$(BIN)/hedgerow demo

clean:
	rm -rf $(VENV) build *.egg-info
