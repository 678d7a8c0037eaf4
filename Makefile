# smp-spark. `make train-all` runs the whole pipeline; `make test` runs the suite. Both set up first.
#   make data SCALE=50000            # generate a smaller dataset
#   make ingest ARGS="--set paths.raw=/data/smpd/train --set paths.scraped=/data/scraped"
#   make ingest CONF=conf/cluster.yaml
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CONF   ?=
SCALE  ?=
ARGS   ?=
JOB_ARGS := $(if $(CONF),--conf $(CONF)) $(if $(SCALE),--set data.scale=$(SCALE)) $(ARGS)
SETUP_STAMP := $(VENV)/.smp-setup

.PHONY: setup data ingest test lint check-stack clean-lake help

help:
	@echo "make setup | data [SCALE=n] | ingest | test | lint   (CONF=profile ARGS='--set key=value')"

setup: $(SETUP_STAMP)

# The venv, the pinned install and the jars warmed into the Ivy cache. Reruns only when setup.py
# changes, so a second `make setup` is a no-op.
$(SETUP_STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==24.3.1"
	$(PIP) install --quiet -e ".[dev]"
	$(PY) jobs/check_stack.py
	touch $@

check-stack: setup
	$(PY) jobs/check_stack.py $(JOB_ARGS)

data: setup
	$(PY) jobs/generate_data.py $(JOB_ARGS)

ingest: setup
	$(PY) jobs/ingest.py $(JOB_ARGS)

test: setup
	$(PY) -m pytest -q tests

lint: setup
	$(VENV)/bin/ruff check smp_spark jobs tests benchmarks

clean-lake:
	rm -rf lake
