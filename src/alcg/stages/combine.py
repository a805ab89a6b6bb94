"""Join the parts of one experiment run split by seeds into the summary the whole run writes.

A run too long for one machine or session can be split into parts, each the same config with a
subset of ``experiment.seeds`` (laid over it as one more ``--configfile``). Parts on one
machine share ``results/<run>/`` and its reference: running the whole config after them only
writes the summary. Parts on different machines each write their own ``summary/rounds.tsv``;
this joins those tables and writes ``rounds.tsv``, ``experiment.tsv``, ``primary.tsv`` and
``experiment.png`` for all seeds, as the ``summary`` rule would::

    python -m alcg.stages.combine --configfile config/go_curves.yaml --out DIR \\
        part1/rounds.tsv part2/rounds.tsv ...

Refused, with the reason: a seed in two parts; a seed, arm or round missing from the config's
design (unless ``--partial``); rows of a seed, arm or round the config does not run; parts whose
held-out labels differ (their label noise ``heldout_label_se2`` disagrees: they were not
measured against the same labels; unless ``--mixed-references``: parts on different machines,
or Go parts from before 2026-12-07, whose ``go_native`` was not bit-reproducible, see
docs/usage/reruns.md).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alcg.util.errors import AlcgError, DataError

log = logging.getLogger(__name__)

#: columns that are the same in every row of one run: the held-out labels' noise (kJ/mol/nm)^2
SHARED_COLUMNS = ("heldout_labels", "heldout_label_se2", "heldout_label_se2_weighted")


def parse_value(text: str):
    """A ``rounds.tsv`` cell as written by :func:`alcg.analysis.summary.write_tsv`: empty -> None,
    ``True``/``False`` -> bool, then int, then float, else the text."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_rounds(path: str | Path) -> list[dict]:
    """The rows of one ``rounds.tsv``, typed (see :func:`parse_value`)."""
    from alcg.analysis.summary import read_tsv

    rows = [{k: parse_value(v) for k, v in r.items()} for r in read_tsv(path)]
    if not rows or "seed" not in rows[0]:
        raise DataError(f"{path}: not a rounds.tsv (no rows or no seed column)")
    return rows


def join_parts(parts: dict[str, list[dict]], seeds: list[int], arms: list[str], n_rounds: int,
               partial: bool = False, mixed_references: bool = False) -> list[dict]:
    """The rows of all parts, checked against the design (``seeds`` x ``arms`` x rounds 0..n_rounds).

    Parameters
    ----------
    parts : rows of each part's ``rounds.tsv``, by the file's name (for the messages)
    seeds, arms, n_rounds : the design of the config the parts ran
    partial : accept seeds of the design that no part ran (the summary then covers fewer seeds)
    mixed_references : accept parts measured against different held-out labels (parts run on
        other CPUs, or Go parts from before 2026-12-07, when the native was not reproducible, compute
        different reference runs, see docs/usage/reruns.md).
        Every comparison is paired within a seed, whose arms share one reference, so it stays
        valid; the seeds' spread then includes the references'. Logged as a warning.
    """
    owner: dict[int, str] = {}
    for name, rows in parts.items():
        for seed in sorted({r["seed"] for r in rows}):
            if seed in owner:
                raise DataError(f"seed {seed} is in two parts: {owner[seed]} and {name}")
            owner[seed] = name
    rows = [r for part in parts.values() for r in part]
    _check_design(rows, owner, seeds, arms, n_rounds, partial)
    for col in SHARED_COLUMNS:
        values = {(r.get(col), owner[r["seed"]]) for r in rows}
        if len({v for v, _ in values}) > 1:
            text = f"the parts were not measured against the same held-out labels: {col} differs " \
                   f"({sorted(values, key=str)})"
            if not mixed_references:
                raise DataError(text + " (give --mixed-references to pair within seeds anyway)")
            log.warning("%s; every comparison is paired within a seed", text)
    order = {s: i for i, s in enumerate(seeds)}
    return sorted(rows, key=lambda r: (order[r["seed"]], arms.index(r["arm"]), r["round"]))


def _check_design(rows: list[dict], owner: dict[int, str], seeds: list[int], arms: list[str], n_rounds: int,
                  partial: bool) -> None:
    extra = sorted(set(owner) - set(seeds))
    if extra:
        raise DataError(f"seeds {extra} ({', '.join(sorted({owner[s] for s in extra}))}) are not in the "
                        f"config's experiment.seeds {seeds}")
    missing = sorted(set(seeds) - set(owner))
    if missing and not partial:
        raise DataError(f"no part has seeds {missing} of experiment.seeds (give --partial to summarize fewer)")
    want = {(s, a, k) for s in owner for a in arms for k in range(n_rounds + 1)}
    have = [(r["seed"], r["arm"], r["round"]) for r in rows]
    if len(have) != len(set(have)):
        raise DataError("a (seed, arm, round) row appears twice in one part")
    if set(have) != want:
        odd = sorted(set(have) ^ want)[:3]
        raise DataError(f"the parts' rows do not match the config's arms {arms} and rounds 0..{n_rounds}: "
                        f"e.g. (seed, arm, round) {odd} ({owner.get(odd[0][0], 'no part')})")


def combine(config_files: list[str], tables: list[str], out: str | Path, partial: bool = False,
            mixed_references: bool = False) -> list[dict]:
    """Join ``tables`` (parts' ``rounds.tsv``) under the config and write the summary to ``out``."""
    from alcg.config import settings as S
    from alcg.stages.analysis import write_summary
    from alcg.stages.validate import load_configs

    cfg = load_configs(config_files)
    parts = {t: read_rounds(t) for t in tables}
    rows = join_parts(parts, list(cfg["experiment"]["seeds"]), list(cfg["experiment"]["arms"]),
                      cfg["loop"]["n_rounds"], partial, mixed_references)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_summary(rows, S.parse(S.Evaluate, cfg["evaluate"]), S.parse(S.Analysis, cfg["analysis"]),
                  str(out / "rounds.tsv"), str(out / "experiment.tsv"), str(out / "primary.tsv"),
                  str(out / "experiment.png"))
    log.info("joined %d parts, %d seeds, into %s", len(tables), len({r["seed"] for r in rows}), out)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configfile", nargs="+", required=True,
                    help="the config files of the whole run (config/config.yaml is read first)")
    ap.add_argument("--out", required=True, help="folder for rounds.tsv, experiment.tsv, primary.tsv, experiment.png")
    ap.add_argument("--partial", action="store_true", help="accept that some seeds were not run")
    ap.add_argument("--mixed-references", action="store_true",
                    help="accept parts measured against different held-out labels (other machines, Go natives)")
    ap.add_argument("tables", nargs="+", help="each part's summary/rounds.tsv")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        combine(args.configfile, args.tables, args.out, args.partial, args.mixed_references)
    except AlcgError as e:
        raise SystemExit(f"alcg: {e}") from None


if __name__ == "__main__":
    main()
