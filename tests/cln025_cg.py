"""A CLN025-like C-alpha model for the fast-force and time-step tests.

The prior parameters are those :func:`alcg.cg.priors.fit_priors` gives for 160 ps of all-atom
CLN025 (amber14-all + GBn2, 340 K, 4 fs with HMR), rounded; the folded structure is one
C-alpha frame of that run (nm, centred); masses are the residue masses the mapping gives.
So bond stiffnesses (~85,000 kJ/mol/nm^2, the fastest CG motion) and masses (glycine:
57 amu) are the ones a real CG simulation of CLN025 faces.
"""
import numpy as np
import torch

from alcg.config import settings
from alcg.cg.model import CGModel
from alcg.cg.priors import KB_KJ_MOL_K, PriorEnergy

TEMPERATURE_K = 340.0
BEAD_TYPES = [20, 20, 4, 15, 7, 17, 8, 17, 19, 20]  # any fixed types: YYDPETGTWY
MASSES_AMU = np.array([165.19, 163.17, 114.08, 97.12, 128.11, 101.1, 57.05, 101.1, 186.21, 179.17])
FOLDED_NM = np.array([
    [-0.408, -0.169, -0.548], [-0.165, -0.035, -0.285], [0.159, -0.214, -0.2], [0.226, -0.495, 0.059],
    [0.514, -0.289, 0.216], [0.251, 0.001, 0.287], [-0.093, -0.165, 0.315], [-0.233, 0.204, 0.26],
    [-0.277, 0.475, -0.008], [0.026, 0.688, -0.096]])
PRIOR = dict(
    bond_r0=[0.386, 0.386, 0.389, 0.387, 0.388, 0.387, 0.388, 0.385, 0.387],
    bond_k=[83400.0, 78700.0, 84000.0, 92000.0, 89400.0, 87100.0, 85100.0, 78300.0, 83100.0],
    angle_t0=[2.162, 2.004, 1.614, 1.624, 1.832, 1.578, 2.315, 2.194],
    angle_k=[121.5, 154.9, 284.7, 297.1, 182.7, 458.4, 76.8, 142.2],
    dih_cos=[[-0.618, 3.8, -0.617], [5.093, 0.033, -0.915], [-5.735, 0.652, 3.461], [-6.433, -3.672, -3.046],
             [5.17, -0.984, 1.069], [0.263, 0.628, 2.622], [4.085, 0.649, 2.146]],
    dih_sin=[[-8.56, -0.003, -0.731], [-5.242, 5.162, -1.614], [4.42, 4.311, -4.569], [2.989, 3.186, 0.78],
             [-4.962, 5.208, -2.586], [8.979, -2.546, 2.079], [-8.162, 0.75, 0.713]],
    rep_sigma=0.462)


def cln025_prior() -> PriorEnergy:
    return PriorEnergy(10, KB_KJ_MOL_K * TEMPERATURE_K, **PRIOR)


def cln025_model(hparams: dict | None = None, seed: int = 0, readout_scale: float = 1.0) -> CGModel:
    """Prior + a randomly initialised SchNet (the schema's ``model`` settings, ``hparams``
    overriding some); ``readout_scale`` scales the network energy."""
    torch.manual_seed(seed)
    model = CGModel(torch.tensor(BEAD_TYPES), cln025_prior(), settings.defaults(settings.Model, **{"zero_init_output": False, **(hparams or {})}))
    if model.net is not None and readout_scale != 1.0:
        with torch.no_grad():
            model.net.lin2.weight.mul_(readout_scale)
    return model


def cln025_frames(n: int, seed: int = 0, noise_nm: float = 0.03, unfolded_fraction: float = 0.5) -> np.ndarray:
    """(n, 10, 3) frames: the folded structure with noise, and partly unfolded chains.

    Unfolded chains are random walks of 0.386 nm steps, from coiled to almost straight, so
    that pair distances span the whole range up to and beyond a 3 nm cutoff.
    """
    rng = np.random.default_rng(seed)
    out = FOLDED_NM[None] + rng.normal(0.0, noise_nm, (n, 10, 3))
    n_unf = int(n * unfolded_fraction)
    steps = rng.normal(size=(n_unf, 9, 3)) * np.linspace(1.0, 0.2, n_unf)[:, None, None] + [1.0, 0.0, 0.0]
    steps *= 0.386 / np.linalg.norm(steps, axis=-1, keepdims=True)
    out[:n_unf] = np.concatenate([np.zeros((n_unf, 1, 3)), np.cumsum(steps, 1)], 1)
    return out
