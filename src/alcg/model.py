"""CGSchNet: prior energy + a SchNet network on the bead graph; forces by autograd.

The network is :class:`torch_geometric.nn.SchNet` (Gaussian radial basis, cosine cutoff,
continuous-filter convolutions with shifted softplus, per-bead energies summed per
structure). Its neighbour search is :class:`StructureGraph`, written in plain torch, so
that no compiled extension (pyg-lib / torch-cluster) is needed and neighbours are only
searched inside each structure (no O(N^2) across replicas).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch_geometric.nn import SchNet

import alcg
from alcg.errors import DataError
from alcg.io import atomic_path
from alcg.priors import PriorEnergy

#: bump when the checkpoint layout changes incompatibly
CHECKPOINT_FORMAT = 1

DEFAULT_HPARAMS = dict(cutoff_nm=3.0, n_rbf=50, hidden=128, n_filters=128, n_interactions=3,
                       max_neighbors=64)


class StructureGraph(nn.Module):
    """Radius graph inside each structure of a batch of equal-sized structures.

    Parameters
    ----------
    n_beads : beads per structure
    cutoff_nm : neighbour cutoff in nm
    """

    def __init__(self, n_beads: int, cutoff_nm: float):
        super().__init__()
        self.n_beads = n_beads
        self.cutoff = cutoff_nm
        i, j = torch.meshgrid(torch.arange(n_beads), torch.arange(n_beads), indexing="ij")
        off = i != j
        self.register_buffer("src", j[off].reshape(-1), persistent=False)
        self.register_buffer("dst", i[off].reshape(-1), persistent=False)

    def forward(self, pos: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_struct = pos.shape[0] // self.n_beads
        p = pos.view(n_struct, self.n_beads, 3)
        dist = (p[:, self.src] - p[:, self.dst]).norm(dim=-1)
        offset = (torch.arange(n_struct, device=pos.device) * self.n_beads)[:, None]
        keep = dist < self.cutoff
        edge_index = torch.stack([(self.src + offset)[keep], (self.dst + offset)[keep]])
        return edge_index, dist[keep]


class CGModel(nn.Module):
    """Total CG energy = prior + SchNet network.

    Parameters
    ----------
    bead_types : (N,) integer type per bead (residue type)
    prior : fitted :class:`~alcg.priors.PriorEnergy`
    hparams : network hyperparameters (keys of :data:`DEFAULT_HPARAMS`)
    """

    def __init__(self, bead_types: torch.Tensor, prior: PriorEnergy, hparams: dict | None = None):
        super().__init__()
        self.hparams = {**DEFAULT_HPARAMS, **(hparams or {})}
        h = self.hparams
        self.n_beads = int(len(bead_types))
        self.register_buffer("bead_types", torch.as_tensor(bead_types, dtype=torch.long))
        self.prior = prior
        self.net = None
        if h["n_interactions"] > 0:
            self.net = SchNet(hidden_channels=h["hidden"], num_filters=h["n_filters"],
                              num_interactions=h["n_interactions"], num_gaussians=h["n_rbf"],
                              cutoff=h["cutoff_nm"], max_num_neighbors=h["max_neighbors"],
                              interaction_graph=StructureGraph(self.n_beads, h["cutoff_nm"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energy (B,) in kJ/mol of coordinates x (B, N, 3) in nm."""
        energy = self.prior(x)
        if self.net is not None:
            n_struct = x.shape[0]
            z = self.bead_types.repeat(n_struct)
            batch = torch.arange(n_struct, device=x.device).repeat_interleave(self.n_beads)
            energy = energy + self.net(z, x.reshape(-1, 3), batch).view(-1)
        return energy

    def energy_and_forces(self, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm = -dE/dx."""
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            energy = self(x)
            (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=create_graph)
        return energy, -grad


def save_model(path: str | Path, model: CGModel, extra: dict | None = None) -> None:
    """Save a self-contained checkpoint (weights, hyperparameters, prior, bead types)."""
    blob = {"format": CHECKPOINT_FORMAT, "alcg_version": alcg.__version__,
            "hparams": model.hparams, "prior": model.prior.params(),
            "bead_types": model.bead_types.cpu(), "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "extra": extra or {}}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_model(path: str | Path, device: str = "cpu") -> CGModel:
    """Load a checkpoint written by :func:`save_model`; refuse incompatible versions."""
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:
        raise DataError(f"cannot read model checkpoint {path}: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise DataError(f"model checkpoint {path} has format {found!r}; this alcg "
                        f"({alcg.__version__}) reads format {CHECKPOINT_FORMAT}")
    prior = PriorEnergy(**blob["prior"])
    model = CGModel(blob["bead_types"], prior, blob["hparams"])
    model.load_state_dict(blob["state_dict"])
    model.extra = blob.get("extra", {})
    return model.to(device)
