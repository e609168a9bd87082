# The two commands of the README: `make tiny` (the built-in pipeline) and `make test`.
# Both create .venv on first use; torch is pinned first so pip takes the CPU build where one is on disk.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.koe-installed

.PHONY: tiny test lint env browser

env: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0" || $(PY) -m pip install --quiet torch
	$(PY) -m pip install --quiet -e '.[dev,deepspeed]'
	touch $@

tiny: $(STAMP)
	$(VENV)/bin/koe run tiny

test: $(STAMP) browser
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

# Headless Chromium + chromedriver for tests/serve (Selenium); installed with apt-get when root, else those tests skip
# and say why. Never fails the build: a machine without a browser package still runs every other test.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make: installing chromium + chromium-driver for tests/serve"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    chromium-driver >/dev/null 2>&1; } || echo "make: no browser package could be installed: tests/serve skip"; \
	else echo "make: no chromium/chromedriver and not root: tests/serve skip (apt-get install chromium chromium-driver)"; \
	fi
