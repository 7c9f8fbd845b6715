# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= demo_output
PYTEST_ARGS ?=

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

# Reinstall only when the project's dependencies change.
$(VENV)/.installed-ml: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[ml]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@ $(VENV)/.installed-ml

demo: $(VENV)/.installed-ml
	$(BIN)/isslide-cube demo $(DEMO_OUT)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/python -m benchmarks.kernels

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .hypothesis
