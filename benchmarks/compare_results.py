"""Compare two results folders of the same config, value by value (the refactor check).

    python benchmarks/compare_results.py BEFORE/results/test AFTER/results/test [--json out.json]

Arrays (``.npz``, ``.h5``, tensors in ``.pt``) must be equal bit for bit (a CG dataset by the
frames it reads back: a merged file equals the manifest of shards that replaced it); JSON and the
``metadata`` of ``.npz`` files are compared key by key, and differing keys are listed (a
renamed setting shows up there, a changed number in the arrays). Plots and logs are skipped.
Exit status 0 when every array is identical.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SKIP = {".png", ".log", ".tsv", ".html"}


def _flat(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flat(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, obj


def _json_diff(a, b) -> list[str]:
    fa, fb = dict(_flat(a)), dict(_flat(b))
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def _arrays(path: Path) -> tuple[dict, dict]:
    """(arrays, metadata) of a results file."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files if k != "metadata"}
            meta = json.loads(str(d["metadata"])) if "metadata" in d.files else {}
        if path.name == "dataset.npz":  # a merged file or a manifest of shards: compare the frames
            return _dataset_arrays(path), {}
        return arrays, meta
    if path.suffix == ".h5":
        import tables

        with tables.open_file(str(path)) as h5:
            return {n._v_pathname: n.read() for n in h5.walk_nodes("/", "Array")}, {}
    if path.suffix == ".pt":
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=False)
        tensors = {k: v.numpy() for k, v in _flat(obj) if isinstance(v, torch.Tensor)}
        rest = {k: v for k, v in _flat(obj) if not isinstance(v, torch.Tensor)}
        return tensors, json.loads(json.dumps(rest, default=str))
    if path.suffix == ".json":
        return {}, json.loads(path.read_text())
    return {"bytes": np.frombuffer(path.read_bytes(), np.uint8)}, {}


def _dataset_arrays(path: Path) -> dict:
    """A CG dataset's arrays as :func:`alcg.formats.dataset.load` reads them, whichever its layout."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from alcg.formats import dataset

    data = dataset.load(path)
    return {k: np.asarray(getattr(data, k)) for k in dataset.KEYS}


def compare(before: Path, after: Path) -> dict:
    """Per-file verdicts for every file present in either folder."""
    names = sorted({p.relative_to(before) for p in before.rglob("*") if p.is_file()} |
                   {p.relative_to(after) for p in after.rglob("*") if p.is_file()})
    out = {"identical": [], "metadata_only": {}, "different": {}, "missing": []}
    for rel in names:
        if rel.suffix in SKIP:
            continue
        a, b = before / rel, after / rel
        if not (a.exists() and b.exists()):
            out["missing"].append(str(rel))
            continue
        (xa, ma), (xb, mb) = _arrays(a), _arrays(b)
        xa, xb = ({k: np.asarray(v) for k, v in x.items()} for x in (xa, xb))
        bad = [k for k in sorted(set(xa) | set(xb)) if k not in xa or k not in xb
               or xa[k].dtype != xb[k].dtype or not np.array_equal(xa[k], xb[k], equal_nan=xa[k].dtype.kind == "f")]
        meta = _json_diff(ma, mb)
        if bad:
            out["different"][str(rel)] = bad
        elif meta:
            out["metadata_only"][str(rel)] = meta
        else:
            out["identical"].append(str(rel))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    res = compare(args.before, args.after)
    summary = {k: len(v) for k, v in res.items()}
    print(json.dumps(summary), json.dumps({k: res[k] for k in ("different", "missing")}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 1 if res["different"] or res["missing"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
