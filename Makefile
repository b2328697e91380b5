# The README's commands. `make train` and `make test` set up .venv first on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch these machines have at hand; `make TORCH=torch` lets pip pick (CUDA, several GB).
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: setup train test lint tensorboard bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,sweep]'
	touch $@

train: setup
	$(PY) scripts/train.py $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

tensorboard: setup
	$(VENV)/bin/tensorboard --logdir outputs

bench: setup
	$(PY) benchmarks/run.py $(ARGS)
