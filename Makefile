# make run       : set up .venv from nothing, then run the workflow on config/config.yaml
# make test      : run the test suite (after make setup)
# make gpu-check : prove the GPU paths on this machine, JSON (benchmarks/gpu_check.py)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# Which torch and OpenMM builds `make setup` installs: auto (by nvidia-smi, envs/gpu_kind.sh),
# cpu, cuda12 or cuda13. To change it later: make clean-venv setup GPU=...
GPU ?= auto
TORCH := 2.13.0
# Where GPU=cuda12 gets torch's CUDA 12 build (the default index serves its CUDA 13 build);
# GPU=cuda13 uses TORCH_INDEX when set, else the default index.
TORCH_INDEX_CUDA12 ?= https://download.pytorch.org/whl/cu128
TORCH_INDEX ?=

.PHONY: setup run test bench gpu-check clean-venv cluster-test-deps

setup: $(VENV)/.installed

# torch goes first, pinned, so that the package's torch>=2.4 keeps that build. cpu: torch as
# the pip configuration serves it (here the local CPU wheel) and OpenMM's CPU/OpenCL wheel;
# cuda12/cuda13: torch's CUDA build and OpenMM's CUDA plugin (openmm[cuda12|cuda13]), checked.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	kind=$$(GPU=$(GPU) sh envs/gpu_kind.sh) && echo "make setup: $$kind builds" && \
	case $$kind in \
	  cpu) $(BIN)/pip install --quiet torch==$(TORCH) && \
	       $(BIN)/pip install --quiet -e '.[test]' ;; \
	  cuda12) $(BIN)/pip install --quiet torch==$(TORCH) --index-url $(or $(TORCH_INDEX),$(TORCH_INDEX_CUDA12)) && \
	          $(BIN)/pip install --quiet -e '.[test]' 'openmm[cuda12]' && \
	          $(BIN)/python envs/check_gpu_install.py $$kind ;; \
	  cuda13) $(BIN)/pip install --quiet torch==$(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) && \
	          $(BIN)/pip install --quiet -e '.[test]' 'openmm[cuda13]' && \
	          $(BIN)/python envs/check_gpu_install.py $$kind ;; \
	esac && echo $$kind > $@

run: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	$(BIN)/python -m pytest -q

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
