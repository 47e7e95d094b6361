# racelab — needs only python3 and GNU make; everything else goes in .venv.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

RUN_ARGS     ?=
EXPLORE_ARGS ?=
PYTEST_ARGS  ?=

.DEFAULT_GOAL := test
.PHONY: setup proto proto-check run explore test bench clean

# The venv is (re)built only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --quiet --upgrade pip
	$(PY) -m pip install --disable-pip-version-check --quiet -e '.[dev]'
	touch $@

setup: $(STAMP)

# Regenerate racelab/v1/ from proto/racelab/v1/*.proto.
proto: setup
	$(PY) tools/gen_proto.py

# Fail if the generated code in the tree is not what the .proto files produce.
proto-check: setup
	$(PY) tools/gen_proto.py --check

run: setup
	$(VENV)/bin/racelab run $(RUN_ARGS)

explore: setup
	$(VENV)/bin/racelab explore $(EXPLORE_ARGS)

test: setup proto-check
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	@set -e; benches='$(sort $(wildcard bench/*.py))'; \
	if [ -z "$$benches" ]; then echo "no benchmarks under bench/"; fi; \
	for b in $$benches; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
