# make run   : set up .venv from nothing, then run the workflow on config/config.yaml
# make test  : run the test suite (after make setup)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all

.PHONY: setup run test bench clean-venv cluster-test-deps

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0   # first: a CPU build; an unpinned torch pulls CUDA
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/run_all.py

# Debian's SLURM + munge, so that the cluster test runs against a real scheduler (root only)
cluster-test-deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge

clean-venv:
	rm -rf $(VENV)
