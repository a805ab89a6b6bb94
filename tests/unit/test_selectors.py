"""Selectors: one interface, a registry; random stays in the window, committee finds disagreement."""
from dataclasses import replace

import numpy as np
import pytest

from alcg.selection import selectors
from alcg.util.errors import ConfigError
from alcg.selection.rmsd_coverage import physical_mask
from alcg.config.settings import Select
from test_rmsd_coverage import _hairpin, _helix, _noisy

SEL = Select(selector=None, seed=0, n_select=5, n_spare=0, rmsd_lo_nm=0.08, rmsd_hi_nm=0.5, min_pair_rmsd_nm=0.05, n_centers=20, bond_min_nm=0.2,
             bond_max_nm=0.6, min_distance_nm=0.2, committee_members=3, force_sd_lo_kj_mol_nm=1.0,
             force_sd_hi_kj_mol_nm=1e4,
             force_sd_lo_train_quantile=None)


def _inputs(committee=()):
    helix = _helix()
    train = _noisy(helix, 300, 0.01, 0)
    cg = _noisy(helix, 200, 0.01, 1)
    # frames at graded distances from the helix: some inside the window, some beyond it
    far = _hairpin()
    for i, w in enumerate(np.linspace(0.05, 1.0, 40)):
        cg[100 + i] = (1 - w) * helix + w * far + np.random.default_rng(i).normal(0, 0.005, helix.shape)
    return selectors.SelectionInput(cg, train, np.arange(1000, 1300), list(committee))


def test_registry_names_the_four_strategies_and_refuses_unknown():
    assert {"rmsd", "random", "md", "committee"} <= set(selectors.names())
    with pytest.raises(ConfigError, match="unknown selector 'nope'"):
        selectors.get("nope")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_picks_only_inside_the_window(seed):
    inp = _inputs()
    res = selectors.get("random")(SEL, seed).fit(inp).fetch_model()
    assert 0 < len(res.picked) <= SEL.n_select
    rmsd = res.scores[res.picked]
    assert np.all((rmsd >= SEL.rmsd_lo_nm) & (rmsd <= SEL.rmsd_hi_nm))
    assert physical_mask(res.targets, SEL.bond_min_nm, SEL.bond_max_nm, SEL.min_distance_nm).all()
    assert res.backmap and np.all(res.template >= 1000)  # dataset indices of the nearest training frames


def test_random_and_rmsd_differ_in_ranking_not_window():
    inp = _inputs()
    rmsd = selectors.get("rmsd")(SEL, 0).fit(inp).fetch_model()
    rnd = selectors.get("random")(SEL, 0).fit(inp).fetch_model()
    window = (rmsd.scores >= SEL.rmsd_lo_nm) & (rmsd.scores <= SEL.rmsd_hi_nm)
    assert rmsd.scores[rmsd.picked[0]] == pytest.approx(np.nanmax(np.where(window, rmsd.scores, np.nan)))
    assert np.all(window[rnd.picked])
    assert rnd.table["n_candidates"] == rmsd.table["n_candidates"]


def test_md_picks_training_frames_without_cg():
    inp = _inputs()
    res = selectors.get("md")(SEL, 3).fit(inp).fetch_model()
    assert not res.backmap and len(res.template) == SEL.n_select
    assert len(set(res.template.tolist())) == SEL.n_select
    assert set(res.template.tolist()) <= set(inp.train_index.tolist())
    assert not selectors.get("md").uses_cg


def test_committee_ranks_a_planted_disagreement_first():
    inp = _inputs()
    planted = 150  # an ordinary, physically valid frame

    def member(scale):
        def forces(x):
            f = -100.0 * (x - x.mean(1, keepdims=True))  # agreement: the same for all members
            hit = np.all(np.isclose(x, inp.cg_frames[planted], atol=1e-9), axis=(1, 2))
            f[hit, 3] += scale  # only on the planted frame, only on bead 3, members disagree
            return f
        return forces

    inp.committee = [member(s) for s in (0.0, 300.0, -300.0)]
    res = selectors.get("committee")(SEL, 0).fit(inp).fetch_model()
    assert res.picked[0] == planted
    expected = np.sqrt(np.mean([0, 300.0 ** 2 * 3, 300.0 ** 2 * 3]))  # s.d. of (0, 300, -300) per component
    assert res.scores[planted] == pytest.approx(expected, rel=1e-4)
    others = np.delete(res.scores, planted)
    assert np.nanmax(others) < 1e-3
    assert res.template[0] in inp.train_index


def _spread_committee(helix):
    """Members that disagree in proportion to a frame's distance from ``helix`` (kJ/mol/nm)."""
    def member(sign):
        def forces(x):
            d = np.sqrt(((x - helix) ** 2).sum((1, 2)))[:, None, None]
            return -100.0 * (x - x.mean(1, keepdims=True)) + sign * 1000.0 * d * np.ones_like(x)
        return forces
    return [member(s) for s in (0.0, 1.0, -1.0)]


def test_committee_window_from_its_training_spread_selects_where_a_fixed_one_finds_nothing():
    inp = _inputs(_spread_committee(_helix()))
    train_dev = selectors.force_deviation(inp.committee, inp.train_coords)
    fixed = selectors.get("committee")(SEL, 0).fit(inp).fetch_model()
    too_high = replace(SEL, force_sd_lo_kj_mol_nm=5e3, force_sd_hi_kj_mol_nm=1e4,
             force_sd_lo_train_quantile=None)
    assert selectors.get("committee")(too_high, 0).fit(inp).fetch_model().table["n_candidates"] == 0
    ruled = replace(too_high, force_sd_lo_train_quantile=0.95)
    res = selectors.get("committee")(ruled, 0).fit(inp).fetch_model()
    lo, hi = res.table["force_sd_window_kj_mol_nm"]
    assert lo == pytest.approx(np.quantile(train_dev, 0.95)) and hi == 1e4
    assert 0 < res.table["n_candidates"] < fixed.table["n_candidates"]
    assert len(res.picked) == SEL.n_select and np.all(res.scores[res.picked] >= lo)
    assert np.all(res.picked >= 100)  # the planted far frames, not the training-like ones


def test_committee_needs_two_members():
    with pytest.raises(ValueError, match=">= 2 members"):
        selectors.get("committee")(SEL, 0).fit(_inputs([lambda x: x])).fetch_model()


def test_a_plugin_file_registers_a_selector(tmp_path):
    plugin = tmp_path / "toy.py"
    plugin.write_text(
        "import numpy as np\n"
        "from alcg.selection import selectors\n"
        "@selectors.register\n"
        "class First(selectors.Selector):\n"
        "    name = 'toyfirst'\n"
        "    def fit(self, inp):\n"
        "        p = np.arange(min(self.settings.n_select, len(inp.cg_frames)))\n"
        "        self.result_ = selectors.Selection(inp.cg_frames[p], inp.train_index[p], True,\n"
        "            np.zeros(len(inp.cg_frames)), p, 'none', (0.0, 1.0), {'n_selected': len(p)})\n"
        "        return self\n")
    selectors.load_plugin(plugin)
    res = selectors.get("toyfirst")(SEL, 0).fit(_inputs()).fetch_model()
    assert res.picked.tolist() == list(range(SEL.n_select))


def test_iid_draws_only_from_the_pool_it_is_given():
    """The positive control picks frames of the equilibrium pool (source ``pool``), never
    training frames, at random by its seed; without a pool it refuses."""
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(50, 10, 3))
    inp = selectors.SelectionInput(np.zeros((0, 10, 3)), rng.normal(size=(20, 10, 3)), np.arange(100, 120),
                                   pool_coords=pool)
    cls = selectors.get("iid")
    assert cls.uses_pool and not cls.uses_cg
    res = cls(SEL, 4).fit(inp).fetch_model()
    assert res.source == "pool" and not res.backmap and len(res.template) == SEL.n_select
    assert res.template.max() < len(pool) and len(set(res.template.tolist())) == SEL.n_select
    assert np.array_equal(res.targets, pool[res.template])
    other = cls(SEL, 5).fit(inp).fetch_model()
    assert not np.array_equal(other.template, res.template)
    with pytest.raises(ValueError, match="pool"):
        cls(SEL, 4).fit(selectors.SelectionInput(np.zeros((0, 10, 3)), pool, np.arange(50)))


def test_an_arm_runs_the_selector_its_settings_name():
    from dataclasses import replace

    assert selectors.of_arm("random_b", replace(SEL, selector="random")) is selectors.get("random")
    assert selectors.of_arm("md", SEL) is selectors.get("md")
    with pytest.raises(ConfigError, match="random_b"):
        selectors.of_arm("random_b", SEL)
