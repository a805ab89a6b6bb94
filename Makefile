# make run       : set up .venv from nothing, then run the workflow on config/config.yaml
# make test      : run the test suite (after make setup)
# make gpu-check : prove the GPU paths on this machine, JSON (benchmarks/gpu_check.py)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# Which torch and OpenMM builds `make setup` installs: auto (nvidia-smi's driver and card, read
# by envs/gpu_kind.sh; the choice and the compute capabilities of each torch build are
# src/alcg/hardware/torch_builds.py's), cpu, cuda12 or cuda13. To change it later: make clean-venv setup GPU=...
GPU ?= auto
TORCH := 2.13.0
# PyTorch's wheel indexes, one per build: cpu, cu126 (compute capability 5.0-9.0), cu129
# (7.5-12.0); cuda13 takes the default index's build (7.5-12.0 + PTX). TORCH_INDEX, when set,
# replaces the index of whatever build is chosen.
TORCH_WHL ?= https://download.pytorch.org/whl
TORCH_INDEX ?=

.PHONY: setup run test bench gpu-check clean-venv cluster-test-deps

setup: $(VENV)/.installed

# torch goes first, pinned, so that the package's torch>=2.4 keeps that build. cpu: torch's CPU
# build, torch==$(TORCH)+cpu as the pip configuration serves it (a local wheel or index: no
# download), else from PyTorch's CPU index (the default index's Linux wheel is a CUDA build);
# and OpenMM's CPU/OpenCL wheel. cuda12/cuda13: torch's CUDA build and OpenMM's CUDA plugin
# (openmm[cuda12|cuda13]), checked by envs/check_gpu_install.py.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	sel=$$(GPU=$(GPU) PY=$(PY) sh envs/gpu_kind.sh) && set -- $$sel && kind=$$1 && tag=$$2 && \
	case $$kind in \
	  cpu) if [ -n "$(TORCH_INDEX)" ]; then $(BIN)/pip install --quiet torch==$(TORCH) --index-url $(TORCH_INDEX); \
	       elif ! $(BIN)/pip install --quiet torch==$(TORCH)+cpu 2>/dev/null; then \
	         echo "make setup: the pip configuration has no torch $(TORCH)+cpu; from $(TORCH_WHL)/cpu" && \
	         $(BIN)/pip install --quiet torch==$(TORCH) --index-url $(TORCH_WHL)/cpu; fi && \
	       $(BIN)/pip install --quiet -e '.[test,docs]' ;; \
	  cuda12|cuda13) \
	       index="$(TORCH_INDEX)" && { [ -n "$$index" ] || [ "$$tag" = default ] || index=$(TORCH_WHL)/$$tag; } && \
	       $(BIN)/pip install --quiet torch==$(TORCH) $${index:+--index-url $$index} && \
	       $(BIN)/pip install --quiet -e '.[test,docs]' "openmm[$$kind]" && \
	       $(BIN)/python envs/check_gpu_install.py $$kind ;; \
	esac && echo $$kind $$tag > $@

run: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	$(BIN)/python -m pytest -q --durations=15

bench: setup
	$(BIN)/python benchmarks/run_all.py

gpu-check: setup
	$(BIN)/python benchmarks/gpu_check.py --out benchmarks/measured/gpu_check.json

# Debian's SLURM + munge, so that the cluster test runs against a real scheduler (root only)
cluster-test-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge

clean-venv:
	rm -rf $(VENV)
