# The two commands of the README: `make up` and `make test`. Each sets itself up from nothing:
# virtualenv, Python packages, the local stack's servers (downloaded/built into ~/.cache/culture-platform).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: up test venv lint unit stack-up stack-down status

$(STAMP): pyproject.toml
	@echo "==> setting up $(VENV) (Python packages from PyPI; wheels cached by pip outside the repo)"
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --upgrade pip
	@$(BIN)/pip install -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# Extra checks other parts of the tree contribute to `make test` (e.g. the protobuf contracts).
CHECKS :=
-include proto/checks.mk

# The local stack, then every role of the registration slice as supervised local processes
# (`culture dev up`: waits for each to be healthy, prints the gateway URL, Ctrl-C stops them).
up: venv
	@echo "==> bringing the local stack up"
	$(BIN)/culture stack up
	$(BIN)/culture stack status
	$(BIN)/culture dev up --seed --stack

stack-up: venv
	$(BIN)/culture stack up
	$(BIN)/culture stack status

stack-down: venv
	$(BIN)/culture stack down

status: venv
	$(BIN)/culture stack status

lint: venv
	$(BIN)/ruff check .

unit: venv
	$(BIN)/pytest -m unit

test: venv lint $(CHECKS) stack-up
	@echo "==> running the tests (unit, integration, e2e) against the local stack"
	$(BIN)/pytest
