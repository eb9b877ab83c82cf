# The two commands of the README: `make up` and `make test`. Each sets itself up from nothing:
# virtualenv, Python packages, the local stack's servers (downloaded/built into ~/.cache/culture-platform).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Every Python package comes from the lock file uv.lock (made by `make lock` from pyproject.toml),
# so a fresh machine, CI and the images get the same versions. uv itself (PyPI) is pinned here.
UV_VERSION := 0.13.8
UV := $(BIN)/uv --no-python-downloads
# The runtime dependencies (no extras) with hashes, exported from uv.lock for the Dockerfiles' pip.
IMAGE_REQUIREMENTS := requirements-runtime.txt
IMAGE_EXTRAS :=
UV_EXPORT = $(UV) export --frozen --quiet --format requirements-txt --no-emit-project --no-dev \
	    $(foreach e,$(IMAGE_EXTRAS),--extra $(e))
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml uv.lock 2>/dev/null | sha1sum | cut -c1-12)

.PHONY: up test venv lint unit stack-up stack-down status lock lock-upgrade lock-check

$(VENV)/.uv-$(UV_VERSION):
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check 'uv==$(UV_VERSION)'
	@rm -f $(VENV)/.uv-* && touch $@

# The venv is exactly the lock: every extra, the project itself editable. --locked refuses a lock
# that no longer matches pyproject.toml (then: `make lock`, commit uv.lock and $(IMAGE_REQUIREMENTS)).
$(STAMP): pyproject.toml uv.lock $(VENV)/.uv-$(UV_VERSION)
	@echo "==> setting up $(VENV) from uv.lock (packages from PyPI, cached by uv outside the repo)"
	@$(UV) sync --locked --all-extras || { echo "uv.lock does not match pyproject.toml: run 'make lock' and commit uv.lock and $(IMAGE_REQUIREMENTS)" >&2; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

# After editing the dependencies in pyproject.toml: re-resolve what changed, keep every other pin.
lock: $(VENV)/.uv-$(UV_VERSION)
	$(UV) lock $(LOCK_ARGS)
	$(UV_EXPORT) > $(IMAGE_REQUIREMENTS)

# Every package to the newest version pyproject.toml allows (one package: make lock LOCK_ARGS='--upgrade-package kopf').
lock-upgrade: LOCK_ARGS = --upgrade
lock-upgrade: lock

# Part of `make test`: the lock matches pyproject.toml and the images' requirements match the lock.
lock-check: $(VENV)/.uv-$(UV_VERSION)
	@echo "==> checking that uv.lock and $(IMAGE_REQUIREMENTS) match pyproject.toml"
	@$(UV) lock --check --quiet || { echo "uv.lock is out of date: run 'make lock'" >&2; exit 1; }
	@$(UV_EXPORT) | diff -u $(IMAGE_REQUIREMENTS) - \
	  || { echo "$(IMAGE_REQUIREMENTS) is out of date: run 'make lock'" >&2; exit 1; }

venv: $(STAMP)

# Extra checks other parts of the tree contribute to `make test` (e.g. the protobuf contracts).
CHECKS := lock-check
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
	$(BIN)/lint-imports

unit: venv
	$(BIN)/pytest -m unit -n 2

# One pytest run per layer, so each layer's time is its own; exit status 5 (no test in the layer) is
# not a failure. The unit layer runs on two pytest-xdist workers (CPU-bound: 52 s instead of 72 s on
# two cores), the integration layer on two, a test folder to a worker
# (tests/conftest.py: xdist_group), the e2e layer on two, a test file to a worker (each test has its
# own namespace): their tests mostly wait on servers, processes and pods, not on the CPU. Those two print
# their 15 slowest tests (set-ups included), which is where a slow run's time went.
# Every phase is timed by stack/culture_stack/phases.py (standard library only: it runs before the
# venv exists), which prints a table of the phases (and the builds inside them) at the end,
# also when one failed. The test layers keep going after a failure, the other phases stop the run.
# `e2e builds` makes the node, its binaries, the images and skaffold before the e2e layer (cold: the
# slowest builds of a fresh machine), so they are timed on their own and no test's timeout covers them.
PYTEST_LAYER = $(BIN)/pytest -m $(1) $(2) || test \$$? -eq 5
test:
	@$(PY) stack/culture_stack/phases.py run --keep-going unit,integration,e2e \
	  "set-up (venv)=$(MAKE) --no-print-directory venv" \
	  "lint/contracts=$(MAKE) --no-print-directory lint $(CHECKS)" \
	  "unit=$(call PYTEST_LAYER,unit,-n 2)" \
	  "stack=$(MAKE) --no-print-directory stack-up" \
	  "integration=$(call PYTEST_LAYER,integration,-n 2 --dist loadgroup --durations=15)" \
	  "e2e builds=$(BIN)/culture cluster up --images && $(BIN)/culture cluster skaffold version" \
	  "e2e=$(call PYTEST_LAYER,e2e,-n 2 --dist loadfile --durations=15)"
