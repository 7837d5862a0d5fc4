# Grad-CAM evaluation benchmark. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN := $(PY) -m benchmark -m
# DATA_ROOT: folder holding the prepared manifests (data_prep output), e.g. DATA_ROOT=/data/manifests
DATA_ROOT ?=
# LAUNCHER: local (default, one process) or slurm (submitit; see conf/hydra/launcher/slurm.yaml)
LAUNCHER ?= local
ARGS ?=
LAUNCH := $(if $(filter slurm,$(LAUNCHER)),hydra/launcher=slurm,)
ILSVRC := $(if $(DATA_ROOT),dataset.root=$(DATA_ROOT)/ilsvrc2012_val,)
VOC_VAL := $(if $(DATA_ROOT),dataset.root=$(DATA_ROOT)/voc2007_val,)
VOC_TEST := $(if $(DATA_ROOT),dataset.root=$(DATA_ROOT)/voc2007_test,)
COCO_VAL := $(if $(DATA_ROOT),dataset.root=$(DATA_ROOT)/coco2014_val,)
export PYTHONUNBUFFERED := 1
# Python's default, whatever the shell says: the targets import the same modules in many processes
# (test workers and the processes tests start, demo workers), compiled once into __pycache__ (git-ignored)
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install demo golden demo-ecosystem test test-slow test-slurm bench bench-quick bench-record bench-verify gpu-check tables table1 table2 table3 pointing pointing-modified dashboard clean-results

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0
	$(PY) -m pip install -q -e '.[test,bench,dashboard]'
	$(PY) -m pip install -q --no-deps quantus==0.6.0  # the metrics' reference (docs/metrics.md); its declared opencv-python would shadow opencv-python-headless
	$(PY) -c 'import benchmark._compat as c; c.main()'  # `import torchvision` first works too (benchmark/_compat.py)
	@touch $(STAMP)

install: $(STAMP) ## create/use .venv and install the package with its extras (idempotent)
	bash tools/install_tex.sh  # pdflatex + booktabs for the LaTeX table tests, when missing

demo: install ## embedded data, shipped toy weights, every demo experiment, the tables (compared with results/golden) and figures, in one process
	$(PY) -m benchmark.demo --full

golden: install ## record a finished demo's tables as results/golden and rewrite the demo figures of README/docs
	$(PY) -m benchmark.report.golden --update

demo-ecosystem: install ## pytorch-grad-cam and Captum methods beside Grad-CAM on the demo data and the real photos (results/tables/demo_ecosystem.md)
	$(PY) -m data_prep.synthetic --out .cache/data/synthetic
	$(PY) -m benchmark.training
	$(PY) -m benchmark.demo.ecosystem

# pytest-xdist: one worker per core; a test file stays on one worker (its module fixtures are made once)
XDIST ?= -n auto --dist loadfile
test: install ## the test suite (fast tests, in parallel; XDIST= runs them in one process)
	$(PY) -m pytest -q $(XDIST)

test-slow: install ## the slow tests only
	$(PY) -m pytest -q -m slow $(XDIST)

test-slurm: install ## sweeps through hydra/launcher=slurm on a private one-node Slurm cluster (root; installs slurm-wlm and munge; ~5 min)
	$(PY) -m pytest -q -rs -m slurm tests/slurm

BENCH_ARGS ?=
bench: install ## fast paths vs pytorch-grad-cam and Captum; tables printed, CSVs in results/bench (~7 min on 2 cores)
	$(PY) -m benchmark.perf --out results/bench $(BENCH_ARGS)

bench-quick: install ## the bench harness on the toy models (seconds): a smoke test
	$(PY) -m benchmark.perf --quick --out results/bench/quick

bench-record: install ## re-record the docs' bench sections on a quiet machine (refused above load 0.75 per core), rewrite the docs' blocks
	$(PY) -m benchmark.perf --sections gradcam,engines,ecosystem,pipeline --quiet-only --out results/bench/record
	$(PY) -m benchmark.perf.recorded --record results/bench/record --write

bench-verify: install ## rerun the recorded bench sections at a small budget; fails where a ratio leaves its recorded range
	$(PY) -m benchmark.perf --verify --quiet-only --out results/bench/verify $(BENCH_ARGS)

gpu-check: install ## every method and metric on CUDA vs CPU, Table 1 jobs and occlusion engines timed; writes results/gpu_check/gpu_check.json
	$(PY) -m benchmark.perf.gpu_check --device cuda --out results/gpu_check $(ARGS)

WANDB_ENTITY ?=
WANDB_PROJECT ?= gradcam-benchmark
dashboard: install ## build and save the W&B workspace (WANDB_ENTITY=... [WANDB_PROJECT=...])
	@test -n "$(WANDB_ENTITY)" || { echo "set WANDB_ENTITY=<user or team>"; exit 2; }
	$(PY) -m benchmark.tracking.dashboard --entity $(WANDB_ENTITY) --project $(WANDB_PROJECT) --save

tables: install ## rebuild every table from the records under results/runs (merges shards first)
	$(PY) -m benchmark.report

VGG16_GAP_CHECKPOINT ?= checkpoints/vgg16_gap.pt
table1: install ## Table 1, ILSVRC 2012 val localization (DATA_ROOT=..., LAUNCHER=local|slurm); VGG16-GAP rows if its checkpoint exists
	$(RUN) experiment=table1 $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table1_grabcut $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table1_cam $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table1_cam_backprop $(ILSVRC) $(LAUNCH) $(ARGS)
	@if [ -f "$(VGG16_GAP_CHECKPOINT)" ]; then VGG16_GAP_CHECKPOINT=$(VGG16_GAP_CHECKPOINT) $(RUN) experiment=table1_vgg16_gap $(ILSVRC) $(LAUNCH) $(ARGS); \
	VGG16_GAP_CHECKPOINT=$(VGG16_GAP_CHECKPOINT) $(RUN) experiment=table1_cam_vgg16_gap $(ILSVRC) $(LAUNCH) $(ARGS); \
	else echo "table1: no $(VGG16_GAP_CHECKPOINT), VGG16-GAP rows skipped (make one: python -m benchmark.training.finetune vgg16_gap --help)"; fi
	$(PY) -m benchmark.report

table2: install ## Table 2, rank correlation with occlusion on VOC 2007 val
	$(RUN) experiment=table2_occlusion $(VOC_VAL) $(LAUNCH) $(ARGS)
	$(PY) -m benchmark.report

table3: install ## Table 3, Grad-CAM design choices and the layer sweeps on ILSVRC 2012 val
	$(RUN) experiment=table3_ablations $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table3_ablations_10crop $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table3_layers_vgg16 $(ILSVRC) $(LAUNCH) $(ARGS)
	$(RUN) experiment=table3_layers_resnet50 $(ILSVRC) $(LAUNCH) $(ARGS)
	$(PY) -m benchmark.report

pointing: install ## pointing game on VOC 2007 test (COCO 2014 val: ARGS='dataset=coco2014_val model=vgg16_coco14,resnet50_coco14')
	$(RUN) experiment=pointing $(VOC_TEST) $(LAUNCH) $(ARGS)
	$(PY) -m benchmark.report

pointing-modified: install ## Grad-CAM's modified pointing game on COCO 2014 val (vgg16_coco14)
	$(RUN) experiment=pointing_modified $(COCO_VAL) $(LAUNCH) $(ARGS)
	$(PY) -m benchmark.report

clean-results: ## remove run outputs (keeps data and model caches)
	rm -rf results/runs
