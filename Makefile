# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LINT_STAMP := $(VENV)/.lint-installed-stamp

.PHONY: install test lint demo bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	# setuptools too: the wheel test builds without isolation, and pyproject.toml needs setuptools >= 69.
	$(BIN)/python -m pip install --quiet --upgrade pip 'setuptools>=69'

# Reinstall when the project's metadata changes; the editable install picks up code changes itself.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	@touch $@

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

$(LINT_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --editable '.[test,lint]'
	@touch $@

# Style, formatting, types, and the layer contract (no module imports a layer above its own).
lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

demo: $(STAMP)
	@bash scripts/demo.sh $(BIN)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
