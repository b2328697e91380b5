# The README's commands. `make train` and `make test` set up .venv first on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch these machines have at hand; `make TORCH=torch` lets pip pick (CUDA, several GB).
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: setup setup-dev train test lint tensorboard bench

# What a run, a grid sweep (joblib, submitit), TensorBoard and the pictures need: not Optuna (see pyproject.toml).
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[sweep]'
	touch $@

# The same .venv with the test tools and the Optuna search (the README's Optuna command is under test).
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[sweep,optuna,dev]'
	touch $@

train: setup
	$(PY) scripts/train.py $(ARGS)

test: setup-dev
	$(PY) -m pytest -q $(ARGS)

lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

tensorboard: setup
	$(PY) scripts/open_tensorboard.py $(ARGS)

# Target 1 is measured in what `make train` creates too: a second venv without the dev and optuna extras.
LEAN_VENV ?= .venv-lean

bench: setup-dev
	$(MAKE) setup VENV=$(LEAN_VENV)
	$(PY) benchmarks/run.py --lean-python $(LEAN_VENV)/bin/python $(ARGS)
