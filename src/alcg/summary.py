"""The per-round summary table (``summary/rounds.tsv``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from alcg.io import atomic_path, load_npz

COLUMNS = ["round", "n_train_frames", "oracle_ns", "n_candidates", "n_selected", "n_failed_select",
           "n_failed_backmap", "n_failed_oracle", "exploded_fraction", "train_loss", "val_loss",
           "tica_w1", "tica_w1_sd", "tica_w1_change_pct", "control_n_train_frames", "control_oracle_ns",
           "control_exploded_fraction", "control_val_loss", "control_tica_w1", "control_tica_w1_sd",
           "control_tica_w1_change_pct"]


def _json(path: str | None) -> dict:
    return json.loads(Path(path).read_text()) if path else {}


def oracle_ns(run_files: list[str]) -> float:
    """Recorded all-atom time (ns) in the oracle runs (ok or failed runs of known length)."""
    total = 0.0
    for f in run_files:
        data = load_npz(f)
        if data["metadata"].get("status", "ok") == "ok":
            meta = data["metadata"]
            total += len(data["potential_energy"]) * meta["record_interval_steps"] * meta["timestep_fs"] * 1e-6
    return total


def _status_count(files: list[str], status: str) -> int:
    return sum(load_npz(f)["metadata"].get("status", "ok") == status for f in files)


def round_rows(rounds: list[dict]) -> list[dict]:
    """Rows of the summary table from per-round file lists.

    Each entry of ``rounds`` holds paths: ``dataset``, ``metrics`` (training), ``evaluate``,
    ``replicas``, and for rounds with selection ``select``, ``backmaps``, ``oracles``; keys
    prefixed ``control_`` give the control arm's.
    """
    rows, cum, cum_c = [], 0.0, 0.0
    for k, r in enumerate(rounds):
        ev, tr = _json(r["evaluate"]), _json(r["metrics"])
        sel = _json(r.get("select"))
        row = {"round": k, "n_train_frames": len(load_npz(r["dataset"])["frame"]), "oracle_ns": cum,
               "n_candidates": sel.get("n_candidates"), "n_selected": sel.get("n_selected"),
               "n_failed_select": sel.get("n_failed"),
               "n_failed_backmap": _status_count(r.get("backmaps", []), "rejected") if r.get("backmaps") else None,
               "n_failed_oracle": _status_count(r.get("oracles", []), "failed") if r.get("oracles") else None,
               "exploded_fraction": ev.get("exploded_fraction"),
               "train_loss": tr["history"]["train_loss"][-1] if tr.get("history", {}).get("train_loss") else None,
               "val_loss": tr.get("best_val_loss"), "tica_w1": ev.get("tica_w1"), "tica_w1_sd": ev.get("tica_w1_sd")}
        cum += oracle_ns(r.get("oracles", []))
        if r.get("control_evaluate"):
            evc, trc = _json(r["control_evaluate"]), _json(r["control_metrics"])
            row.update(control_n_train_frames=len(load_npz(r["control_dataset"])["frame"]),
                       control_oracle_ns=cum_c, control_exploded_fraction=evc.get("exploded_fraction"),
                       control_val_loss=trc.get("best_val_loss"), control_tica_w1=evc.get("tica_w1"),
                       control_tica_w1_sd=evc.get("tica_w1_sd"))
            cum_c += oracle_ns(r.get("control_oracles", []))
        rows.append(row)
    for arm in ("", "control_"):
        base = rows[0].get(f"{arm}tica_w1") or rows[0].get("tica_w1")
        for row in rows:
            w1 = row.get(f"{arm}tica_w1")
            if w1 is not None and base:
                row[f"{arm}tica_w1_change_pct"] = 100.0 * (w1 - base) / base
    return rows


def write_tsv(rows: list[dict], path: str | Path) -> None:
    """Write the table atomically (empty cells where a value does not apply)."""
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.6g}"
        return str(v)
    lines = ["\t".join(COLUMNS)] + ["\t".join(fmt(row.get(c)) for c in COLUMNS) for row in rows]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
