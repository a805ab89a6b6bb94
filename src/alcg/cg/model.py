"""CGSchNet: prior energy + a SchNet network on the bead graph; forces = -dE/dx.

The network is :class:`torch_geometric.nn.SchNet` (Gaussian radial basis, cosine cutoff,
continuous-filter convolutions with shifted softplus, per-bead energies summed per
structure). Its neighbour search is :class:`StructureGraph`, written in plain torch, so
that no compiled extension (pyg-lib / torch-cluster) is needed and neighbours are only
searched inside each structure (no O(N^2) across replicas).

Two exact ways to evaluate the same network (same parameters, same energies):

- ``"edges"``: PyG's SchNet on an edge list (directed pairs within the cutoff) with scatter;
- ``"dense"``: all pairs i<j of each structure as dense tensors (pairs, structures, features),
  each filter evaluated once per pair since W(d_ij) = W(d_ji). For small molecules, where
  most pairs are within the cutoff, this does half the filter work and no edge bookkeeping.

``pair_path="auto"`` (the default) picks ``"dense"`` when at least half of the pairs are
within the cutoff (then dense evaluates no more filters than the edge list), else ``"edges"``.
On the dense path :meth:`CGModel.energy_and_forces` computes the network's forces by an
explicit backward pass (:func:`alcg.cg.dense_schnet.network_forces`, exact filters), so that
force-matching training needs a first-order backward pass only; on the edge path they come
from autograd (double backward in training). Simulation uses the faster, tabulated
:class:`alcg.cg.fast_forces.FastForceField` instead (:func:`alcg.cg.simulate.model_force_fn`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn
from torch_geometric.nn import SchNet

import alcg
from alcg.cg.dense_schnet import (Pairs, all_pairs, check_plain_schnet, cosine_envelope, exact_pair_filters,
                               live_weights, network_forces, sum_over_pairs)
from alcg.util.errors import DataError
from alcg.util.fileio import atomic_path
from alcg.cg.priors import PriorEnergy
from alcg.config.settings import INIT_ONLY, Model, parse

#: bump when the checkpoint layout changes incompatibly
CHECKPOINT_FORMAT = 1

#: ways to evaluate the network: see the module docstring
PAIR_PATHS = ("auto", "dense", "edges")


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
    prior : fitted :class:`~alcg.cg.priors.PriorEnergy`
    network : the network's hyperparameters (the ``model`` settings; cutoff in nm), kept as
        the dict :attr:`hparams` that checkpoints store; with ``zero_init_output`` the network's
        last layer starts at zero (:func:`zero_output_layer`), so the new model is its prior
    """

    def __init__(self, bead_types: torch.Tensor, prior: PriorEnergy, network: Model):
        super().__init__()
        self.hparams = network.hparams()
        h = self.hparams
        self.n_beads = int(len(bead_types))
        self.register_buffer("bead_types", torch.as_tensor(bead_types, dtype=torch.long))
        self.prior = prior
        self.net = None
        #: "auto", "dense" or "edges" (see the module docstring); not saved with the model
        self.pair_path = "auto"
        pairs = all_pairs(self.n_beads)
        for name, value in pairs._asdict().items():  # bead pairs i<j, see alcg.cg.dense_schnet.Pairs
            self.register_buffer(f"pair_{name}", value, persistent=False)
        if h["n_interactions"] > 0:
            self.net = SchNet(hidden_channels=h["hidden"], num_filters=h["n_filters"],
                              num_interactions=h["n_interactions"], num_gaussians=h["n_rbf"],
                              cutoff=h["cutoff_nm"], max_num_neighbors=h["max_neighbors"],
                              interaction_graph=StructureGraph(self.n_beads, h["cutoff_nm"]))
            if network.zero_init_output:
                zero_output_layer(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Energy (B,) in kJ/mol of coordinates x (B, N, 3) in nm."""
        energy = self.prior(x)
        if self.net is not None:
            energy = energy + self.network_energy(x)
        return energy

    def network_energy(self, x: torch.Tensor, pair_path: str | None = None) -> torch.Tensor:
        """Energy (B,) in kJ/mol of the SchNet part alone, by ``pair_path`` (default: the model's)."""
        path = pair_path or self.pair_path
        if path not in PAIR_PATHS:
            raise ValueError(f"pair_path must be one of {PAIR_PATHS}, not {path!r}")
        d = self._pair_distances(x)
        if path == "auto":
            path = "dense" if _dense_is_cheaper(d, self.hparams["cutoff_nm"]) else "edges"
        if path == "dense":
            return self._dense_energy(d)
        n_struct = x.shape[0]
        z = self.bead_types.repeat(n_struct)
        batch = torch.arange(n_struct, device=x.device).repeat_interleave(self.n_beads)
        return self.net(z, x.reshape(-1, 3), batch).view(-1)

    @property
    def pairs(self) -> Pairs:
        """The molecule's bead pairs i<j (on the model's device)."""
        return Pairs(self.pair_i, self.pair_j, self.pair_inc_i, self.pair_inc_j)

    def _pair_distances(self, x: torch.Tensor) -> torch.Tensor:
        """Distances (P, B) in nm of the pairs i<j of each structure (pair-major)."""
        xt = x.transpose(0, 1)
        return (xt[self.pair_j] - xt[self.pair_i]).norm(dim=-1)

    def _dense_energy(self, d: torch.Tensor) -> torch.Tensor:
        """Network energy (B,) from pair distances d (P, B), all pairs at once (exact).

        Same function as :class:`~torch_geometric.nn.SchNet` with sum readout: messages
        m_i = sum_j W(d_ij) * lin1(h_j), each pair's filter evaluated once for both directions.
        """
        net = self.net
        check_plain_schnet(net)
        n_pairs, n_struct = d.shape
        env = cosine_envelope(d, self.hparams["cutoff_nm"])[..., None]
        rbf = net.distance_expansion(d.reshape(-1))
        h = net.embedding(self.bead_types)[:, None, :].expand(self.n_beads, n_struct, -1)
        for block in net.interactions:
            w = block.mlp(rbf).view(n_pairs, n_struct, -1) * env
            m = sum_over_pairs(w, self.pairs, block.conv.lin1(h))
            h = h + block.lin(block.act(block.conv.lin2(m)))
        e = net.lin2(net.act(net.lin1(h)))
        return e.sum(0).view(n_struct)

    def energy_and_forces(self, x: torch.Tensor, create_graph: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm = -dE/dx (exact).

        ``create_graph``: keep the graph, so that a loss on the forces can be differentiated
        in the weights (training). On the dense path the network's forces come from an
        explicit backward pass (:func:`alcg.cg.dense_schnet.network_forces` with the exact
        filters): the same forces as autograd's, but training then needs only a first-order
        backward pass; on the edge path autograd's double backward is used.
        """
        if self.net is not None and self._dense_chosen(x):
            return self._explicit_energy_and_forces(x, create_graph)
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_(True)
            energy = self(x)
            (grad,) = torch.autograd.grad(energy.sum(), x, create_graph=create_graph)
        return energy, -grad

    def _dense_chosen(self, x: torch.Tensor) -> bool:
        """Whether ``pair_path`` (resolving "auto" on x) means the dense path."""
        if self.pair_path not in PAIR_PATHS:
            raise ValueError(f"pair_path must be one of {PAIR_PATHS}, not {self.pair_path!r}")
        if self.pair_path != "auto":
            return self.pair_path == "dense"
        with torch.no_grad():
            return _dense_is_cheaper(self._pair_distances(x), self.hparams["cutoff_nm"])

    def _explicit_energy_and_forces(self, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior forces by autograd, network forces by the explicit backward pass."""
        with torch.enable_grad():
            xg = x if x.requires_grad else x.detach().requires_grad_(True)
            e_prior = self.prior(xg)
            (g_prior,) = torch.autograd.grad(e_prior.sum(), xg, create_graph=create_graph)
        with torch.set_grad_enabled(create_graph):
            w = live_weights(self.net, self.bead_types)
            e_net, f_net = network_forces(x, w, self.pairs, functools.partial(exact_pair_filters, net=self.net))
        if not create_graph:
            e_prior, e_net, f_net = e_prior.detach(), e_net.detach(), f_net.detach()
        return e_prior + e_net, f_net - g_prior


#: state-dict keys of the network's last linear layer (per-bead hidden/2 features -> energy)
OUTPUT_LAYER = ("net.lin2.weight", "net.lin2.bias")


def zero_output_layer(model: CGModel) -> None:
    """Set the network's last linear layer (weight and bias) to zero, in place.

    The network energy is then exactly 0 kJ/mol for every structure, so the model's energies
    and forces are exactly its prior's; the layer's own gradient is not zero (its input, the
    per-bead features, is not), so training moves it and then every layer below it.
    """
    if model.net is not None:
        with torch.no_grad():
            model.net.lin2.weight.zero_()
            model.net.lin2.bias.zero_()


def prior_only_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A copy of a :class:`CGModel` state dict with the output layer zeroed: the prior alone."""
    out = {k: v.detach().clone() for k, v in state.items()}
    for key in OUTPUT_LAYER:
        if key in out:
            out[key].zero_()
    return out


def _dense_is_cheaper(d: torch.Tensor, cutoff_nm: float) -> bool:
    """True when at least half of the pairs i<j are within the cutoff: then the dense path
    evaluates no more filters (one per pair) than the edge list (two per pair within)."""
    return bool(d.numel()) and float((d < cutoff_nm).float().mean()) >= 0.5


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
    model = CGModel(blob["bead_types"], prior, parse(Model, {**INIT_ONLY, **blob["hparams"]}))
    model.load_state_dict(blob["state_dict"])
    model.extra = blob.get("extra", {})
    return model.to(device)
