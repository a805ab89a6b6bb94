"""Boltzmann-inverted priors reproduce the distributions they were fitted on; priors.json round-trips."""
import numpy as np
import pytest
import torch

from alcg.cg import priors
from alcg.config import settings
from alcg.cg.geometry import angles, bonds, dihedrals
from alcg.cg.priors import fit_priors
from alcg.cg.simulate import simulate
from cg_helpers import N_BEADS, chain_prior, energy_force_fn, langevin, zigzag


def _terms(dihedral_terms: int) -> settings.Priors:
    return settings.defaults(settings.Priors, dihedral_terms=dihedral_terms)


def _sample(energy, seed):
    cfg = langevin(n_steps=5000, save_interval=25, temperature_k=300.0, seed=seed, dt_ps=0.002, friction_per_ps=5.0)
    res = simulate(energy_force_fn(energy), zigzag(128, seed), np.full(N_BEADS, 50.0), cfg, progress=False)
    return res.coords[:, 40:].reshape(-1, N_BEADS, 3)  # drop the first 2 ps


def test_prior_alone_reproduces_fitted_bond_and_angle_histograms():
    data = _sample(chain_prior(angle_k=60.0, sigma=0.3), seed=1)
    prior = fit_priors(data, 300.0, _terms(2))
    resampled = _sample(prior, seed=2)
    for fn in (bonds, angles):
        a = fn(torch.as_tensor(data)).numpy()
        b = fn(torch.as_tensor(resampled)).numpy()
        np.testing.assert_allclose(b.mean(0), a.mean(0), atol=0.2 * a.std(0).mean())
        np.testing.assert_allclose(b.var(0) / a.var(0), 1.0, atol=0.2)
    assert 0.2 < float(prior.rep_sigma) < 0.8  # an excluded-volume distance, in nm


def test_fitted_prior_energy_is_finite_and_dihedral_term_present():
    data = _sample(chain_prior(angle_k=60.0), seed=3)
    prior = fit_priors(data, 300.0, _terms(3))
    terms = prior.terms(torch.as_tensor(data[:10], dtype=torch.float32))
    assert set(terms) == {"bonds", "angles", "dihedrals", "repulsion"}
    assert all(torch.isfinite(t).all() for t in terms.values())
    assert prior.dih_cos.shape == (N_BEADS - 3, 3)
    # the fitted bond constant is kT / var
    b = bonds(torch.as_tensor(data)).numpy()
    np.testing.assert_allclose(prior.bond_k.numpy(), prior.kt / b.var(0), rtol=1e-4)
    assert dihedrals(torch.as_tensor(data[:2])).shape == (2, N_BEADS - 3)


@pytest.mark.parametrize("n_beads", [8, 3])
def test_priors_file_round_trips(tmp_path, n_beads):
    """save then load gives the same parameters, provenance and energies (also without dihedrals)."""
    rng = np.random.default_rng(4)
    data = zigzag(200, 4)[:, :n_beads] + rng.normal(0, 0.01, (200, n_beads, 3))
    prior = fit_priors(data, 300.0, _terms(2))
    priors.save(tmp_path / "priors.json", prior, fitted_on="seed_1/round_000/dataset/dataset.npz", n_frames=200)
    loaded = priors.load(tmp_path / "priors.json")
    assert loaded == priors.FittedPriors.of(prior, "seed_1/round_000/dataset/dataset.npz", 200)
    assert (loaded.fitted_on, loaded.n_frames, loaded.n_beads) == ("seed_1/round_000/dataset/dataset.npz", 200,
                                                                   n_beads)
    assert loaded.energy().params() == prior.params()
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    torch.testing.assert_close(loaded.energy()(x), prior(x), rtol=0, atol=0)


def test_a_file_that_is_not_a_priors_file_is_refused(tmp_path):
    from alcg.util.errors import DataError

    (tmp_path / "p.json").write_text('{"n_beads": 3}')
    with pytest.raises(DataError, match="p.json is not a priors file: no kt"):
        priors.load(tmp_path / "p.json")


def _dihedral_energy(coef: tuple[np.ndarray, np.ndarray], phi: np.ndarray) -> np.ndarray:
    n = np.arange(1, len(coef[0]) + 1)
    return np.cos(phi[:, None] * n) @ coef[0] + np.sin(phi[:, None] * n) @ coef[1]


def test_independent_counts_do_not_raise_walls_for_correlated_frames():
    """Each frame recorded 10 times carries no more evidence: counted as independent samples,
    the dihedral prior is the one of the frames once; counted as frames, its walls on the
    unvisited half of the circle rise (by about kT ln 10)."""
    kt = priors.KB_KJ_MOL_K * 300.0
    phi = np.random.default_rng(5).vonmises(1.0, 4.0, 3000)
    repeated = np.repeat(phi, 10)
    assert priors.statistical_inefficiency(phi) < 1.5
    g = priors.statistical_inefficiency(repeated)
    assert g == pytest.approx(10.0, rel=0.15)
    grid = np.linspace(-np.pi, np.pi, 181)
    once = _dihedral_energy(priors._fourier_fit(phi, kt, 3, 60), grid)
    as_frames = _dihedral_energy(priors._fourier_fit(repeated, kt, 3, 60), grid)
    as_independent = _dihedral_energy(priors._fourier_fit(repeated, kt, 3, 60, counts_scale=g), grid)
    span = lambda e: e.max() - e.min()  # noqa: E731
    np.testing.assert_allclose(as_independent - as_independent.min(), once - once.min(), atol=0.2 * kt)
    assert span(as_frames) > span(as_independent) + 0.5 * kt * np.log(10.0)


def test_dihedral_counts_setting_reaches_the_fit():
    rng = np.random.default_rng(6)
    data = np.repeat(zigzag(300, 6) + rng.normal(0, 0.02, (300, N_BEADS, 3)), 3, axis=0)  # each frame 3 times
    as_frames = fit_priors(data, 300.0, settings.defaults(settings.Priors, dihedral_counts="frames"))
    as_independent = fit_priors(data, 300.0, settings.defaults(settings.Priors, dihedral_counts="independent"))
    assert not torch.allclose(as_frames.dih_cos, as_independent.dih_cos)
    np.testing.assert_array_equal(as_frames.bond_k.numpy(), as_independent.bond_k.numpy())


def test_statistical_inefficiency_of_short_constant_and_joined_series():
    """A series too short or never moving counts as one sample; two runs in different states,
    one after the other, count as fewer independent samples than either run's own g says."""
    assert priors.statistical_inefficiency(np.array([0.1, 0.2, 0.3])) == 3.0
    assert priors.statistical_inefficiency(np.full(50, 0.4)) == 50.0
    rng = np.random.default_rng(7)
    a, b = rng.vonmises(0.0, 4.0, 2000), rng.vonmises(2.0, 4.0, 2000)
    assert max(priors.statistical_inefficiency(a), priors.statistical_inefficiency(b)) < 1.5
    assert priors.statistical_inefficiency(np.concatenate([a, b])) > 10.0
