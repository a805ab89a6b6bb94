"""How far exploration reaches, and what the selectors then find (issue 32, item 1): the
exploration settings of ``config/go_curves.yaml`` chosen on the pilot's round-0 models.

For each pilot seed, the round-0 model (member 0) explores from its own training data under
each variant below; every run is scored as the workflow scores it:

- reach: :func:`alcg.stages.analysis.explore_coverage` (the share of the reference's (Q, Rg)
  bins, and of its mass, that the exploration's frames visit);
- candidates: the ``rmsd`` selector's table on those frames (frames inside the trust window,
  picks for the 16 slots with their spares), as :func:`alcg.stages.query.select` writes it;
- fill: every slot backmapped as the workflow's query job does (:func:`alcg.stages.query.backmap`:
  the pick, then its spares, then a fallback training frame), so ``n_fallback`` counts the slots
  the selector could not fill;
- cost: the run's wall time on this machine (one torch thread).

Variants differ only in the exploration settings (same model, data, seeds and selector).

    snakemake --cores 2 --configfile config/go_curves.yaml config/go_curves_pilot.yaml \\
        results/go_curves_pilot/seed_101/round_000/model/member_0/model.pt \\
        results/go_curves_pilot/seed_102/round_000/model/member_0/model.pt   # first: the models
    python benchmarks/explore_reach.py     # ~12 min on 2 cores

Output: ``benchmarks/measured/explore_reach.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

OUT = ROOT / "benchmarks" / "measured" / "explore_reach.json"
CONFIGS = ["config/config.yaml", "config/go_curves.yaml", "config/go_curves_pilot.yaml"]
#: the settings every variant starts from (pinned here: config/go_curves.yaml's cg_sim changed
#: after this measurement, to the 400 K spread run it chose); the rest of cg_sim is that file's
BASE = {"n_replicas": 64, "n_steps": 20000, "save_interval": 100, "starts": "random", "temperature_k": None}
#: name -> cg_sim keys changed from BASE
VARIANTS = {
    "experiment_10ps": {"n_replicas": 16, "n_steps": 2000, "save_interval": 20, "starts": "random"},
    "random_100ps": {"starts": "random"},
    "spread_100ps": {"starts": "spread"},
    "spread_100ps_400K": {"starts": "spread", "temperature_k": 400.0},
    "spread_25ps": {"starts": "spread", "n_steps": 5000, "save_interval": 25},
    "spread_300ps": {"starts": "spread", "n_steps": 60000, "save_interval": 300},
}


def load_config() -> dict:
    from alcg.stages.validate import load_configs

    return load_configs([ROOT / p for p in CONFIGS[1:]], base=ROOT / CONFIGS[0])


def run_variant(cfg: dict, seed: int, name: str, work: Path) -> dict:
    """One exploration of seed ``seed``'s round-0 model under variant ``name``, scored."""
    from alcg.config import settings as S
    from alcg.stages import analysis, cg, query

    res = ROOT / "results" / cfg["run"]
    r0 = res / f"seed_{seed}/round_000"
    sim = S.parse(S.CGSim, {**cfg["cg_sim"], **BASE, **VARIANTS[name]})
    traj, status = work / f"{name}_{seed}.h5", work / f"{name}_{seed}.json"
    start = time.perf_counter()
    cg.explore(str(r0 / "model/member_0/model.pt"), str(r0 / "dataset/dataset.npz"), str(res / "system/cg.pdb"),
               sim, cfg["forcefield"]["temperature_k"], "cpu", 1000 + seed, str(traj), str(status))
    wall = time.perf_counter() - start
    refs = sorted(str(p) for p in (res / "reference").glob("*.npz"))
    pdb, xml = str(res / "system/folded.pdb"), str(res / "system/folded.xml")
    cov = work / f"{name}_{seed}_coverage.json"
    analysis.explore_coverage(refs, pdb, xml, str(traj), str(status), cfg["evaluate"]["divergence_bins"], str(cov),
                              native=str(res / "system/go_native.npz"))
    table = work / f"{name}_{seed}_select.json"
    query.select("rmsd", str(traj), str(status), str(r0 / "dataset/dataset.npz"), [],
                 S.Select.for_arm(cfg["select"], "rmsd"), "cpu", 7 + seed, str(work / "sel.npz"), str(table),
                 str(work / "sel.png"))
    sel = json.loads(table.read_text())
    fallbacks = backmap_slots(cfg, seed, work / "sel.npz", sel["n_slots"], work)
    return {"seed": seed, "variant": name, "settings": VARIANTS[name], "wall_s": round(wall, 1),
            "n_fallback": fallbacks["n_fallback"], "rejections": fallbacks["rejections"],
            **json.loads(cov.read_text()),
            **{k: sel.get(k) for k in ("n_frames", "n_covered", "n_candidates", "n_failed", "n_slots",
                                       "n_selected", "n_spares")}}


def backmap_slots(cfg: dict, seed: int, selected: Path, n_slots: int, work: Path) -> dict:
    """Backmap every slot of a selection as the query job does; count the fallbacks and the
    rejection reasons (first clause of each)."""
    from collections import Counter

    from alcg.config import settings as S
    from alcg.formats import slot_start
    from alcg.stages import query

    res = ROOT / "results" / cfg["run"]
    runs = sorted(str(p) for p in (res / f"seed_{seed}/initial").glob("rep_*.npz"))
    ff, bm = S.parse(S.ForceField, cfg["forcefield"]), S.parse(S.Backmap, cfg["backmap"])
    n_fallback, reasons = 0, Counter()
    for slot in range(n_slots):
        out = work / f"start_{slot}.npz"
        query.backmap(str(selected), str(res / f"seed_{seed}/round_000/dataset/dataset.npz"), runs,
                      str(res / "system/folded.pdb"), str(res / "system/folded.xml"),
                      str(res / "system/go_native.npz"), ff, bm, slot, str(out))
        start = slot_start.load(out)
        n_fallback += int(start.fallback)
        reasons.update(r["reason"].split(";")[0] for r in start.metadata.get("rejected", []))
    return {"n_fallback": n_fallback, "rejections": dict(reasons)}


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = load_config()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in cfg["experiment"]["seeds"]:
            for name in args.variants:
                rows.append(run_variant(cfg, seed, name, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    OUT.write_text(json.dumps({"configs": CONFIGS, "base": BASE, "variants": VARIANTS, "n_select": cfg["select"]["n_select"],
                               "n_spare": cfg["select"]["n_spare"], "rows": rows}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
