# Grad-CAM evaluation benchmark. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_ROOT ?=
LAUNCHER ?= local
export PYTHONUNBUFFERED := 1

.PHONY: help install demo test test-slow bench tables clean-results

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 torchvision==0.28.0
	$(PY) -m pip install -q -e '.[test,bench,dashboard]'
	@touch $(STAMP)

install: $(STAMP) ## create/use .venv and install the package with its test extras (idempotent)

demo: install ## synthetic data, toy models, every demo experiment, tables (reuses what exists)
	$(PY) -m data_prep.synthetic --out .cache/data/synthetic
	$(PY) -m benchmark.train
	$(PY) -m benchmark -m experiment=demo
	$(PY) -m benchmark.tables --experiment demo

test: install ## the test suite (fast tests; under 10 minutes on 2 cores)
	$(PY) -m pytest -q

test-slow: install ## the slow tests only
	$(PY) -m pytest -q -m slow

tables: install ## rebuild every table from the records under results/runs
	$(PY) -m benchmark.tables

clean-results: ## remove run outputs (keeps data and model caches)
	rm -rf results/runs
