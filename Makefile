# Thin aliases. Every target that needs Python first makes sure .venv exists and is current.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# what ruff looks at; folders appear as the project grows
LINT := $(wildcard itly_async codegen tests benchmarks examples scripts)
TYPED := itly_async $(if $(wildcard codegen/*.py),codegen) $(wildcard scripts/*.py) $(wildcard benchmarks)

.PHONY: venv test lint typecheck fmt bench bench-quick demo golden soak clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT)
	$(BIN)/ruff format --check $(LINT)

typecheck: $(STAMP)
	$(BIN)/mypy --strict $(TYPED)

test: lint typecheck
	$(BIN)/pytest -q

fmt: $(STAMP)
	$(BIN)/ruff format $(LINT)
	$(BIN)/ruff check --fix $(LINT)

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

soak: $(STAMP)
	$(BIN)/python scripts/soak.py

golden: $(STAMP)
	$(BIN)/python -m codegen.golden

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache benchmarks/.venv-peers benchmarks/results
