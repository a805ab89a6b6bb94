# make setup && make run : set up .venv from nothing, then run the main job on the machine at hand
#                          (config/config.yaml with a usable GPU, else config/go_cpu.yaml; CONFIG=... overrides)
# make test      : the quick tests (tests/unit, tests/smoke; <= 10 min on 2 cores)
# make test-full : every test (all tiers, SLURM when installed) and the docs' strict build: what CI runs
# make docs      : the docs site into site/ (mkdocs build --strict)
# make gpu-check : prove the GPU paths on this machine, JSON (benchmarks/gpu_check.py)
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= all
# the config(s) make run runs, separated by spaces (an overlay after its base); empty: chosen by
# src/alcg/hardware/run_choice.py
CONFIG ?=
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

.PHONY: setup run test test-full docs bench gpu-check clean-venv cluster-test-deps

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

# One line first says which config and why; the workflow; its HTML report; where to look.
run: setup
	@set -e; cfg=$$($(BIN)/python -m alcg.hardware.run_choice --config "$(CONFIG)"); \
	out=$$($(BIN)/python -m alcg.hardware.run_choice --run-name "$$cfg"); \
	$(BIN)/snakemake --cores $(CORES) --configfile $$cfg; \
	$(BIN)/snakemake --cores 1 --configfile $$cfg --report "$$out/report.html"; \
	echo "make run: done. Report: $$out/report.html (open it in a browser)"; \
	echo "make run: summary tables and figures: $$out/summary/ (rounds.tsv, experiment.tsv, primary.tsv, experiment.png)"

# The fast tiers, each test limited to 300 s (the smoke loop sets its own limit), spread over
# TEST_WORKERS processes (pytest-xdist, test by test, an idle process taking queued tests): most unit tests use one
# core, so two processes fill a 2-core machine. At most 4 by default (each imports torch and OpenMM);
# TEST_WORKERS=0: one process, no xdist.
TEST_WORKERS ?= auto --maxprocesses 4
test: setup
	$(BIN)/python -m pytest -q -m "not full" -n $(TEST_WORKERS) --dist worksteal --timeout=300 --durations=15

# Every tier, then the docs' strict build (dead links fail it). The JUnit file feeds
# benchmarks/test_durations.py (the measured table of docs/dev/testing.md).
test-full: setup
	$(BIN)/python -m pytest -q --durations=30 --junitxml=.pytest-full.xml
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d site

docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

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
