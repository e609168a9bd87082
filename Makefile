# The two commands of the README: `make tiny` (the built-in pipeline) and `make test`.
# Both create .venv on first use; torch is pinned first so pip takes the CPU build where one is on disk.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.koe-installed

.PHONY: tiny test lint env

env: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0" || $(PY) -m pip install --quiet torch
	$(PY) -m pip install --quiet -e '.[dev,deepspeed]'
	touch $@

tiny: $(STAMP)
	$(VENV)/bin/koe run tiny

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
