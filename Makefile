# Two commands for a new machine:
#   make run   set everything up and start the appliance on its embedded defaults
#   make test  set everything up and run the whole test suite
# Both are idempotent: a second run only checks that everything is in place.

PYTHON    ?= python3
VENV      := .venv
PY        := $(VENV)/bin/python
APPLIANCE := $(VENV)/bin/appliance
DATA_DIR  ?= .appliance
TEST_DATA := .cache/test-data
MODELS    := gemma-3-270m all-minilm-l6-v2 cl100k_base o200k_base
STAMP     := $(VENV)/.installed

.PHONY: run test install models test-models systemd-tools lint bench clean

# The virtual environment is rebuilt only when pyproject.toml or the classifier's compiled
# core (setup.py, appliance/classify/_core/) changes. llama-cpp-python compiles llama.cpp from
# source on first install (about 6 minutes on 2 cores); pip caches the built wheel, so later
# installs on the same machine take seconds.
CORE_SOURCES := setup.py $(wildcard appliance/classify/_core/*.c appliance/classify/_core/*.h)
$(STAMP): pyproject.toml $(CORE_SOURCES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP)

# Model artifacts are fetched from their artifact sources (see OFFLINE_ASSETS.md), verified
# by sha256 and installed into the data directory; already-installed ones are only checked.
models: install
	$(APPLIANCE) --data-dir $(DATA_DIR) models install $(MODELS)

run: models
	$(APPLIANCE) --data-dir $(DATA_DIR) serve

test-models: install
	$(APPLIANCE) --data-dir $(TEST_DATA) models install $(MODELS)

# systemd-analyze lets the unit-file tests run; they skip (saying why) where it cannot be had.
systemd-tools:
	@command -v systemd-analyze >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null; } \
	  || echo "systemd-analyze not installable (needs root and apt-get): unit-file tests will skip"

lint: install
	$(VENV)/bin/ruff check appliance local_models hardware sync tests bench
	$(VENV)/bin/mypy appliance local_models hardware sync

test: install test-models systemd-tools lint
	APPLIANCE_TEST_MODELS_DIR=$(CURDIR)/$(TEST_DATA)/models $(PY) -m pytest $(PYTEST_ARGS)

bench: install test-models
	APPLIANCE_TEST_MODELS_DIR=$(CURDIR)/$(TEST_DATA)/models $(PY) bench/local_throughput.py

clean:
	rm -rf $(VENV) .cache .pytest_cache
