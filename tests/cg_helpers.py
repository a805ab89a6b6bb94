"""Small analytic CG systems for the CG-model tests."""
import numpy as np
import torch

from alcg.config import settings
from alcg.cg.priors import KB_KJ_MOL_K, PriorEnergy
from alcg.cg.simulate import LangevinRun

N_BEADS = 8
KT = KB_KJ_MOL_K * 300.0


def chain_prior(angle_k: float = 40.0, bond_k: float = 20000.0, sigma: float = 0.0) -> PriorEnergy:
    """A known harmonic chain: bonds 0.38 nm, angles 1.9 rad, optional repulsion."""
    n = N_BEADS
    return PriorEnergy(n, KT, np.full(n - 1, 0.38), np.full(n - 1, bond_k), np.full(n - 2, 1.9),
                       np.full(n - 2, angle_k), np.zeros((n - 3, 0)), np.zeros((n - 3, 0)), sigma)


def zigzag(n_rep: int, seed: int = 0) -> np.ndarray:
    """Starting coordinates (n_rep, N, 3) near a planar zig-zag with 0.38 nm bonds."""
    rng = np.random.default_rng(seed)
    half = 1.9 / 2
    x = np.stack([np.arange(N_BEADS) * 0.38 * np.sin(half), (np.arange(N_BEADS) % 2) * 0.38 * np.cos(half),
                  np.zeros(N_BEADS)], axis=1)
    return x[None] + rng.normal(0, 0.005, (n_rep, N_BEADS, 3))


def energy_force_fn(energy):
    def fn(x: torch.Tensor):
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            e = energy(x)
            (g,) = torch.autograd.grad(e.sum(), x)
        return e.detach(), -g
    return fn


def langevin(n_steps: int, save_interval: int, temperature_k: float, seed: int, **sim) -> LangevinRun:
    """A Langevin run with the schema's ``cg_sim`` settings, ``sim`` overriding some of them."""
    return LangevinRun.of(settings.defaults(settings.CGSim, **sim), n_steps=n_steps, save_interval=save_interval,
                          temperature_k=temperature_k, seed=seed)


def legacy_checkpoint_from(partial, cfg: LangevinRun, shape: tuple[int, ...], x0, masses) -> None:
    """Turn the checkpoint folder ``partial`` into the one file ``<partial>.pt`` that earlier
    versions wrote (every frame so far and the state, a torch pickle) and remove the folder."""
    import dataclasses
    import shutil

    from alcg.cg.simulate import _resume, _signature, legacy_checkpoint

    gen = torch.Generator()
    st = _resume(partial, cfg, "cpu", gen, shape, _signature(cfg, shape, x0, masses, ""))
    del st["saved"]
    blob = {**st, "cfg": dataclasses.asdict(cfg), "rng": gen.get_state(), "rng_device": "cpu"}
    torch.save(blob, legacy_checkpoint(partial))
    shutil.rmtree(partial)
