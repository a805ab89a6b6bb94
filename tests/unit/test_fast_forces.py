"""Fast simulation forces: tabulated filters, all-pairs path, explicit backward, compile fallback."""
import torch

from alcg.cg import dense_schnet
from alcg.cg import fast_forces as ff
from alcg.cg.fast_forces import FastForceField, force_error
from cln025_cg import cln025_frames, cln025_model

SMALL = dict(cutoff_nm=3.0, n_rbf=16, hidden=32, n_filters=32, n_interactions=2)


def _network_forces_exact(model, x):
    x = x.clone().requires_grad_(True)
    e = model.network_energy(x)
    (g,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), -g


def test_filter_table_meets_its_tolerance():
    net = cln025_model(SMALL).double().net
    table = ff.tabulate_filters(net, tol=1e-6)
    assert table.max_rel_error <= 1e-6
    d = torch.cat([torch.rand(2000, dtype=torch.float64) * 3.5, torch.tensor([3.0, 3.2], dtype=torch.float64)])
    v, dv = ff.exact_filters(net, d)
    for b in range(len(net.interactions)):
        w, dw = ff.hermite_eval(table.coef[b], d, table.spacing_nm)
        assert float((w - v[b]).abs().max()) <= 1e-6 * float(v[b].abs().max())
        assert float((dw - dv[b]).abs().max()) <= 1e-6 * float(dv[b].abs().max())
        assert float(w[-2:].abs().max()) < 1e-15 and float(dw[-2:].abs().max()) < 1e-12  # at/after cutoff


def test_tabulated_forces_match_the_exact_model():
    """Default network size, float32 as in simulation: relative RMS force error < 1e-4."""
    model = cln025_model()  # 128 features, 50 RBF, 3 blocks
    x = torch.as_tensor(cln025_frames(24, seed=1), dtype=torch.float32)
    d = model._pair_distances(x)
    assert float((d > 3.0).float().mean()) > 0.005  # some pairs beyond the cutoff, too
    table = ff.tabulate_filters(model.net)
    w = ff.frozen_weights(model.net, model.bead_types, table)
    filters = lambda d: ff.tabulated_pair_filters(d, table.coef, table.spacing_nm)  # noqa: E731
    e_tab, f_tab = dense_schnet.network_forces(x, w, model.pairs, filters)
    e_ref, f_ref = _network_forces_exact(model, x)
    assert force_error(f_tab, f_ref) < 1e-4  # the network's forces alone
    torch.testing.assert_close(e_tab, e_ref, rtol=1e-4, atol=1e-4)
    field = FastForceField(model, compile=False)
    e_all, f_all = field(x)
    e_ex, f_ex = model.energy_and_forces(x)
    assert field.mode == "tabulated" and field.info["force_rel_rms_vs_exact"] < 1e-4
    assert force_error(f_all, f_ex) < 1e-4
    torch.testing.assert_close(e_all, e_ex.detach(), rtol=1e-5, atol=1e-3)


def test_fast_path_is_exact_gradient_of_its_energy():
    """Forces of the tabulated model are -dE/dx of its own energy (float64 finite differences)."""
    model = cln025_model(SMALL, readout_scale=20.0).double()
    field = FastForceField(model, compile=False, validate=False)
    x = torch.as_tensor(cln025_frames(4, seed=2))
    _, f = field(x)
    h = 1e-6
    for bead, dim in [(0, 0), (4, 1), (9, 2)]:
        plus, minus = x.clone(), x.clone()
        plus[:, bead, dim] += h
        minus[:, bead, dim] -= h
        fd = -(field(plus)[0] - field(minus)[0]) / (2 * h)
        torch.testing.assert_close(f[:, bead, dim], fd, rtol=1e-6, atol=1e-5)


def test_a_table_that_cannot_be_made_accurate_falls_back_to_the_exact_model(caplog):
    model = cln025_model(SMALL, readout_scale=20.0)
    x = torch.as_tensor(cln025_frames(8, seed=3), dtype=torch.float32)
    field = FastForceField(model, tol=10.0, n_intervals=2, compile=False)  # 1.5 nm grid
    _, f = field(x)
    assert field.mode == "exact" and "exact model" in caplog.text
    torch.testing.assert_close(f, model.energy_and_forces(x)[1])


def test_compile_failures_fall_back_to_eager(monkeypatch, caplog):
    model = cln025_model(SMALL)
    x = torch.as_tensor(cln025_frames(8, seed=4), dtype=torch.float32)
    ref = FastForceField(model, compile=False)(x)[1]

    def no_compiler(fn, *args, **kwargs):
        raise RuntimeError("no C++ compiler found")
    monkeypatch.setattr(torch, "compile", no_compiler)
    field = FastForceField(model, compile=True, compile_after_calls=1)
    torch.testing.assert_close(field(x)[1], ref)
    assert field.mode == "tabulated" and field.info["compile_error"] == "RuntimeError"

    calls = []

    def breaks_later(fn, *args, **kwargs):  # compiles, then fails on a new batch size
        def run(y):
            calls.append(len(y))
            if y.shape[0] != calls[0]:
                raise RuntimeError("recompilation failed")
            return fn(y)
        return run
    monkeypatch.setattr(torch, "compile", breaks_later)
    field = FastForceField(model, compile=True, compile_after_calls=1)
    field(x)
    assert field.mode == "tabulated+compiled"
    torch.testing.assert_close(field(x[:5])[1], ref[:5])
    assert field.mode == "tabulated" and "running eagerly" in caplog.text


def test_automatic_compile_waits_for_a_long_run(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, *a, **k: compiled.append(1) or fn)
    model = cln025_model(SMALL)
    x = torch.as_tensor(cln025_frames(4, seed=5), dtype=torch.float32)
    field = FastForceField(model, compile=True, compile_after_calls=3)
    for _ in range(2):
        field(x)
    assert not compiled and field.mode == "tabulated"
    field(x)
    assert compiled and field.mode == "tabulated+compiled"
    field = FastForceField(model, compile=False, compile_after_calls=1)  # cg_sim.compile: false
    for _ in range(3):
        field(x)
    assert len(compiled) == 1 and field.mode == "tabulated"


def test_the_compile_setting_reaches_the_force_field():
    """``cg_sim.compile`` (no environment variable): on, compile once a run is long; off, never."""
    from alcg.cg.fast_forces import COMPILE_AFTER_CALLS
    from alcg.cg.simulate import model_force_fn

    model = cln025_model(SMALL)
    assert model_force_fn(model, compile=True).compile_at == COMPILE_AFTER_CALLS
    assert model_force_fn(model, compile=False).compile_at == -1


def test_compiled_forces_equal_eager_ones_also_after_replicas_stop():
    """Real torch.compile (inductor; needs a C++ compiler, else the fallback is what runs)."""
    model = cln025_model(SMALL)
    x = torch.as_tensor(cln025_frames(12, seed=6), dtype=torch.float32)
    field = FastForceField(model, compile=True, compile_after_calls=1)
    e, f = field(x)
    e0, f0 = field.eager(x)
    assert field.mode in ("tabulated+compiled", "tabulated")
    assert force_error(f, f0) < 1e-5
    torch.testing.assert_close(e, e0, rtol=1e-5, atol=1e-3)
    _, f_less = field(x[:9])  # exploded replicas removed: a new batch size
    assert force_error(f_less, f0[:9]) < 1e-5


def _velocity_verlet(force_fn, x, v, m, dt, n_steps):
    """Total energy (n_steps + 1, B) of an NVE run (kJ/mol); nm, ps, amu."""
    e, f = force_fn(x)
    energies = [e + 0.5 * (m * v ** 2).sum((1, 2))]
    for _ in range(n_steps):
        v = v + 0.5 * dt * f / m
        x = x + dt * v
        e, f = force_fn(x)
        v = v + 0.5 * dt * f / m
        energies.append(e.detach() + 0.5 * (m * v ** 2).sum((1, 2)))
    return torch.stack(energies)


def test_nve_energy_drift_is_no_worse_than_with_the_exact_network():
    from cln025_cg import MASSES_AMU, TEMPERATURE_K
    from alcg.cg.priors import KB_KJ_MOL_K

    model = cln025_model(dict(SMALL, hidden=64, n_filters=64), readout_scale=100.0).double()
    x = torch.as_tensor(cln025_frames(8, seed=7, noise_nm=0.01, unfolded_fraction=0.0))
    m = torch.as_tensor(MASSES_AMU)[None, :, None]
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = v * torch.sqrt(KB_KJ_MOL_K * TEMPERATURE_K / m)
    field = FastForceField(model, compile=False)
    f_net = _network_forces_exact(model, x)[1]  # the network matters here: its forces are not small
    assert f_net.pow(2).mean().sqrt() > 0.03 * model.energy_and_forces(x)[1].pow(2).mean().sqrt()

    def exact(y):
        e, f = model.energy_and_forces(y)
        return e.detach(), f
    runs = {name: _velocity_verlet(fn, x, v, m, 0.002, 250) for name, fn in (("exact", exact), ("tab", field))}
    for name, etot in runs.items():
        runs[name] = (etot - etot[0]).abs().mean(0)  # mean |E(t) - E(0)| per replica, kJ/mol
    assert float(runs["exact"].mean()) < 1.0  # a sane NVE run to compare with
    assert float(runs["tab"].mean()) <= 1.05 * float(runs["exact"].mean()) + 1e-6


def test_scatter_path_for_larger_molecules_gives_the_same_forces(monkeypatch):
    """Beyond INCIDENCE_MAX_BEADS pair sums are scatters: same forces and training gradients."""
    model = cln025_model(SMALL, readout_scale=20.0).double()
    x = torch.as_tensor(cln025_frames(6, seed=9))
    target = torch.randn_like(x)
    field = FastForceField(model, compile=False, validate=False)

    def run():
        model.zero_grad()
        _, f = model.energy_and_forces(x, create_graph=True)
        ((f - target) ** 2).mean().backward()
        return field(x)[1], f.detach(), [p.grad.clone() for p in model.net.interactions.parameters()]
    small = run()
    monkeypatch.setattr(dense_schnet, "INCIDENCE_MAX_BEADS", 0)
    large = run()
    torch.testing.assert_close(large[0], small[0])
    torch.testing.assert_close(large[1], small[1])
    for a, b in zip(large[2], small[2]):
        torch.testing.assert_close(a, b)


def _long_chains(n_frames: int, n_beads: int, seed: int) -> torch.Tensor:
    """(n_frames, n_beads, 3) random walks of 0.38 nm steps, float64: many pairs beyond 3 nm."""
    g = torch.Generator().manual_seed(seed)
    steps = torch.randn(n_frames, n_beads - 1, 3, generator=g, dtype=torch.float64)
    steps = 0.38 * steps / steps.norm(dim=-1, keepdim=True)
    return torch.cat([torch.zeros(n_frames, 1, 3, dtype=torch.float64), steps.cumsum(1)], 1)


def _chain_model(n_beads: int):
    """Priors fitted to random-walk chains + a small random SchNet (float64)."""
    from alcg.config import settings
    from alcg.cg.model import CGModel
    from alcg.cg.priors import fit_priors

    prior = fit_priors(_long_chains(200, n_beads, seed=0).numpy(), 340.0, settings.defaults(settings.Priors))
    torch.manual_seed(1)
    types = torch.randint(0, 20, (n_beads,), generator=torch.Generator().manual_seed(2))
    model = CGModel(types, prior, settings.defaults(settings.Model, **{"zero_init_output": False, **SMALL}))
    with torch.no_grad():
        model.net.lin2.weight.mul_(20.0)
    return model.double()


def test_pruned_pairs_give_the_dense_forces_and_drop_the_far_pairs():
    """Above PRUNE_ABOVE_BEADS the fast path sums over pairs within the cutoff only: the same
    energies and forces as all pairs (identical terms in the same order), with fewer entries."""
    n = ff.PRUNE_ABOVE_BEADS + 12
    model = _chain_model(n)
    x = _long_chains(5, n, seed=3)
    edges = dense_schnet.edges_within(x, model.pairs, 3.0)
    n_entries = x.shape[0] * n * (n - 1) // 2
    assert 0.2 * n_entries < len(edges.d) < 0.9 * n_entries  # a real test of dropping pairs
    pruned, dense = FastForceField(model, compile=False), FastForceField(model, compile=False, prune=False)
    assert pruned.prune and not dense.prune and pruned.info["pairs"] == "pruned"
    e_p, f_p = pruned(x)
    e_d, f_d = dense(x)
    torch.testing.assert_close(f_p, f_d, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(e_p, e_d, rtol=1e-12, atol=1e-10)
    assert pruned.mode == "tabulated" and pruned.info["force_rel_rms_vs_exact"] < 1e-4  # and the exact model's


def test_pruned_kernel_matches_dense_also_where_dense_sums_are_matmuls():
    """Small molecules keep the dense path by the rule; the pruned kernel forced on one still
    gives its forces (to rounding: the dense sums are matmuls there)."""
    model = cln025_model(SMALL, readout_scale=20.0).double()
    x = torch.as_tensor(cln025_frames(8, seed=5))
    assert float((model._pair_distances(x) > 3.0).float().mean()) > 0.005
    assert not FastForceField(model, compile=False).prune
    e_p, f_p = FastForceField(model, compile=False, validate=False, prune=True)(x)
    e_d, f_d = FastForceField(model, compile=False, validate=False)(x)
    torch.testing.assert_close(f_p, f_d, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(e_p, e_d, rtol=1e-10, atol=1e-9)
