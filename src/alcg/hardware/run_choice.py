"""Which config ``make run`` runs on this machine, and where its outputs land.

With a GPU that runs a kernel here (:func:`alcg.hardware.device.probe_in_child`, in a child
process) it is the GPU workstation config; without one, the config that finishes on a 2-core
CPU. ``CONFIG=...`` (``--config``) overrides the choice: one config, or several separated by
spaces, laid over each other in that order (an overlay after the config it is laid on, e.g.
``CONFIG="config/go_experiment.yaml config/go_pilot.yaml"``).

Command line (what the Makefile calls)::

    python -m alcg.hardware.run_choice [--config "PATH ..."]  # prints the config paths; says why on stderr
    python -m alcg.hardware.run_choice --run-name "PATH ..."  # prints results/<run> of those configs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

#: the config sized for one GPU workstation, and the one that finishes on 2 CPU cores
GPU_CONFIG = "config/config.yaml"
CPU_CONFIG = "config/go_cpu.yaml"
#: the config every --configfile is merged over (the Snakefile's ``configfile:``)
BASE_CONFIG = "config/config.yaml"


def choose(override: str | None = None) -> tuple[str, str]:
    """The config(s) to run and one line saying why.

    Parameters
    ----------
    override
        Config paths given by the user (``CONFIG=...``, separated by spaces); they win when set.

    Returns
    -------
    (config paths separated by spaces, reason)
    """
    if override and override.strip():
        return " ".join(override.split()), "CONFIG was given"
    from alcg.hardware.device import probe_in_child

    reason = probe_in_child(0)["cuda"]
    if reason is None:
        return GPU_CONFIG, "a CUDA GPU runs kernels here: the GPU workstation config"
    return CPU_CONFIG, f"no usable GPU ({reason}): the config that finishes on 2 CPU cores"


def results_folder(config_paths: str, root: Path = Path(".")) -> Path:
    """``results/<run>`` of ``config_paths`` (separated by spaces) merged over the base config,
    the last ``run`` key winning as in Snakemake."""
    run = None
    for path in (BASE_CONFIG, *config_paths.split()):
        data = yaml.safe_load((root / path).read_text()) or {}
        run = data.get("run", run)
    return Path("results") / str(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m alcg.hardware.run_choice", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="", help="config paths, separated by spaces, that override the choice")
    parser.add_argument("--run-name", metavar="PATHS", help="print results/<run> of these configs and exit")
    args = parser.parse_args(argv)
    if args.run_name:
        print(results_folder(args.run_name))
        return 0
    missing = [p for p in args.config.split() if not Path(p).is_file()]
    if missing:
        print(f"make run: CONFIG={args.config}: no such file: {' '.join(missing)}", file=sys.stderr)
        return 2
    path, why = choose(args.config)
    print(f"make run: {path} ({why})", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
