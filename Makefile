# The README's two commands: `make demo` and `make test`. Both work from a bare checkout.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint demo install node-tools clean

install: $(STAMP)

# torch is installed first and pinned to the CPU wheel, so nothing can pull a CUDA build:
# a wheel already on this machine, else PyTorch's CPU index (TORCH_INDEX), probed quickly
# (scripts/install-torch says why and in which order).
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	scripts/install-torch $(BIN)/pip "$(TORCH)" "$(TORCH_INDEX)"
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The reference MJML compiler (npm `mjml`) validates our templates in the tests; it needs Node.
node-tools: .tools/node_modules/.bin/mjml

.tools/node_modules/.bin/mjml:
	@if command -v npm >/dev/null 2>&1; then \
		mkdir -p .tools && npm install --silent --no-audit --no-fund --prefix .tools mjml@4; \
	else echo "npm not found: MJML reference-validation tests will skip"; fi

# Lint, format, types and the floors of the house (import-linter), then the suite.
lint: $(STAMP)
	$(BIN)/ruff check newsletter subscribers jobs templates tests benchmarks scripts
	$(BIN)/ruff format --check newsletter subscribers jobs templates tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) node-tools lint
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/python -m newsletter.cli.demo

clean:
	rm -rf $(VENV) .tools var
