# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install test demo bench clean

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

demo: $(STAMP)
	@bash scripts/demo.sh $(BIN)

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
