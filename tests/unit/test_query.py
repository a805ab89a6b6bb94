"""Every slot of a round gets a start: spare picks after a rejected backmap, then a training frame."""
from types import SimpleNamespace

import numpy as np
import pytest

from alcg.formats.run_file import Status
from alcg.finegrained.backmap import BackmapResult
from alcg.formats import run_file, selection_file, slot_start
from alcg.stages import query


def _selection(n_picks: int, n_slots: int) -> selection_file.SelectionFile:
    return selection_file.SelectionFile(
        targets=np.zeros((n_picks, 3, 3), np.float32), template=np.arange(n_picks, dtype=np.int64) + 100,
        backmap=True, picked=np.arange(n_picks), n_slots=n_slots, fallback_template=np.array([7, 8], np.int64),
        table={"n_selected": min(n_picks, n_slots)})


def test_slot_candidates_are_the_slots_pick_then_its_spares_in_rank_order():
    assert _selection(12, 4).slot_candidates(1) == [1, 5, 9]
    assert _selection(5, 4).slot_candidates(3) == [3]       # too few picks for a spare
    assert _selection(2, 4).slot_candidates(3) == []        # too few picks for the slot itself


def test_selection_and_slot_start_files_round_trip(tmp_path):
    sel = _selection(6, 2)
    selection_file.save(tmp_path / "s.npz", sel)
    back = selection_file.load(tmp_path / "s.npz")
    for name in ("targets", "template", "picked", "fallback_template"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sel, name))
    assert (back.backmap, back.n_slots, back.table) == (sel.backmap, sel.n_slots, sel.table)
    slot_start.save_structure(tmp_path / "a.npz", "PDB TEXT", slot=1, reason="training frame, as is")
    a = slot_start.load(tmp_path / "a.npz")
    assert a.ok and a.pdb == "PDB TEXT" and a.metadata["slot"] == 1 and a.reason == "training frame, as is"
    slot_start.save_without_structure(tmp_path / "b.npz", Status.SKIPPED, "nothing selected", slot=2)
    b = slot_start.load(tmp_path / "b.npz")
    assert not b.ok and b.status is Status.SKIPPED and b.pdb is None and b.reason == "nothing selected"


def _run_backmap(tmp_path, monkeypatch, accept, n_picks=6, n_slots=2, slot=0):
    """query.backmap with the physics replaced: ``accept(pick)`` decides each backmap."""
    sel = tmp_path / "sel.npz"
    selection_file.save(sel, _selection(n_picks, n_slots))
    tried = []

    def fake_backmap(pdb, system_xml, native, ff, bm, target, template):
        pick = int(template[0, 0]) - 100
        tried.append(pick)
        res = BackmapResult(positions_nm=None, ca_rmsd_nm=0.01, n_clashes=0, chirality_ok=True,
                            accepted=accept(pick), reason="" if accept(pick) else "clash", energy_kj_mol=-1.0)
        return res, "PDB TEXT"
    monkeypatch.setattr(query, "_backmap", fake_backmap)
    monkeypatch.setattr(query, "_frame", lambda dataset_path, runs, k: (np.full((1, 3), float(k)), "seed_1/x", k))
    monkeypatch.setattr("openmm.app.PDBFile", lambda path: SimpleNamespace(topology=None))
    monkeypatch.setattr("alcg.finegrained.structure.pdb_text", lambda top, pos: f"frame {pos[0, 0]:.0f}")
    out = tmp_path / "start.npz"
    query.backmap(str(sel), "d.npz", [], "sys.pdb", "sys.xml", None, None, None, slot, str(out))
    return tried, slot_start.load(out)


def test_a_rejected_backmap_tries_the_spares(tmp_path, monkeypatch):
    tried, start = _run_backmap(tmp_path, monkeypatch, accept=lambda pick: pick == 4)
    assert tried == [0, 2, 4]
    meta = start.metadata
    assert start.ok and meta["pick"] == 4 and meta["n_rejected"] == 2
    assert not meta["fallback"] and start.pdb == "PDB TEXT"


def test_a_slot_with_no_accepted_pick_starts_from_its_training_frame(tmp_path, monkeypatch):
    tried, start = _run_backmap(tmp_path, monkeypatch, accept=lambda pick: False, slot=1)
    assert tried == [1, 3, 5]
    meta = start.metadata
    assert start.ok and meta["fallback"] and meta["n_rejected"] == 3
    assert meta["template_frame"] == 8 and start.pdb == "frame 8"  # slot 1's fallback frame


def test_select_writes_ranked_spares_and_a_fallback_frame_per_slot(tmp_path):
    """A real rmsd selection on a short CG run: the first n_select picks are the ones a
    selection without spares makes; spares follow; fallbacks are training frames."""
    from alcg.formats.cg_trajectory import write_trajectory
    from alcg.formats.dataset import CGDataset, save as save_dataset
    from alcg.config.settings import Select, defaults
    from alcg.cg.simulate import simulate
    from cg_helpers import N_BEADS, chain_prior, energy_force_fn, langevin, zigzag

    cfg = langevin(n_steps=400, save_interval=10, temperature_k=600.0, seed=3)
    res = simulate(energy_force_fn(chain_prior(sigma=0.3)), zigzag(4), np.full(N_BEADS, 50.0), cfg,
                   progress=False)
    (tmp_path / "cg.pdb").write_text("".join(
        f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}       0.000   0.000   0.000  1.00  0.00           C\n"
        for i in range(N_BEADS)) + "END\n")
    traj, status = tmp_path / "t.h5", tmp_path / "s.json"
    write_trajectory(res, tmp_path / "cg.pdb", traj, status, cfg.dt_ps, cfg.save_interval)
    n = 6
    save_dataset(tmp_path / "d.npz", CGDataset(
        coords=np.asarray(zigzag(n), np.float32), forces=np.zeros((n, N_BEADS, 3), np.float32),
        bead_types=np.zeros(N_BEADS, np.int64), bead_masses=np.full(N_BEADS, 50.0),
        sequence="A" * N_BEADS, source=np.array(["x"] * n), frame=np.arange(n),
        round=np.zeros(n, np.int64), traj=np.array(["x"] * n),
        split=np.array(["train"] * 4 + ["val"] * 2)))

    def run(n_spare):
        sel = defaults(Select, n_select=2, n_spare=n_spare, rmsd_lo_nm=0.0, rmsd_hi_nm=5.0, min_pair_rmsd_nm=0.01,
                       n_centers=10, bond_min_nm=0.2, bond_max_nm=0.6, min_distance_nm=0.1, committee_members=2,
                       force_sd_lo_kj_mol_nm=1.0, force_sd_hi_kj_mol_nm=10.0,
             force_sd_lo_train_quantile=None)
        out = tmp_path / f"sel{n_spare}.npz"
        query.select("rmsd", str(traj), str(status), str(tmp_path / "d.npz"), [], sel, "cpu", 0, str(out),
                     str(tmp_path / "tab.json"), str(tmp_path / "h.png"))
        return selection_file.load(out)
    plain, spared = run(0), run(2)
    assert spared.n_slots == 2 and len(spared.picked) == 6
    np.testing.assert_array_equal(spared.picked[:2], plain.picked)
    assert spared.table["n_selected"] == 2 and spared.table["n_spares"] == 4
    assert set(spared.fallback_template.tolist()) <= {0, 1, 2, 3}  # training frames, never validation


def test_query_round_runs_each_slot_with_its_own_seed_and_files(tmp_path, monkeypatch):
    """The Go model's one job per round: backmap then oracle slot by slot, slot i with seed i
    and files i, exactly as the per-slot rules would call them; mismatched lists are refused."""
    calls = []

    def fake_backmap(selected, dataset_path, runs, pdb, xml, native, ff, bm, slot, out, pool_runs=()):
        calls.append(("backmap", slot, out))

    def fake_oracle(start, xml, ff, oracle_cfg, seed, out, threads=None, force_map_path=None):
        calls.append(("oracle", seed, start, out, force_map_path))
        run_file.save_status(out, Status.SKIPPED, "test")
    monkeypatch.setattr(query, "backmap", fake_backmap)
    monkeypatch.setattr(query, "oracle", fake_oracle)
    starts, runs = [str(tmp_path / f"s{i}.npz") for i in range(3)], [str(tmp_path / f"r{i}.npz") for i in range(3)]
    query.query_round("sel.npz", "d.npz", [], "p.pdb", "x.xml", None, None, None, None, [11, 22, 33], starts, runs,
                      force_map_path="fmap.npz")
    assert calls == [c for i, seed in enumerate([11, 22, 33])
                     for c in (("backmap", i, starts[i]), ("oracle", seed, starts[i], runs[i], "fmap.npz"))]
    with pytest.raises(ValueError, match="2 seeds, 3 start files"):
        query.query_round("sel.npz", "d.npz", [], "p.pdb", "x.xml", None, None, None, None, [1, 2], starts, runs)
