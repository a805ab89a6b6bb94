"""The dense SchNet kernel: all bead pairs of a molecule as dense tensors, with an explicit
backward pass for the forces.

Shared by training (:meth:`alcg.cg.model.CGModel.energy_and_forces`, exact filters) and
simulation (:class:`alcg.cg.fast_forces.FastForceField`, tabulated filters). A leaf module: it
imports torch only, no other alcg module, so that the model and the fast force field both
build on it without importing each other.

Layout: pair-major, (P, B, F) tensors for the pairs i<j of B structures and (N, B, F) for
the beads; each pair's filter W(d_ij) = W(d_ji) is evaluated once. The network is
:class:`torch_geometric.nn.SchNet` with sum readout (Gaussian radial basis, cosine cutoff,
continuous-filter convolutions with shifted softplus). Units: nm, kJ/mol, kJ/mol/nm.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

LN2 = math.log(2.0)


def cosine_envelope(d: torch.Tensor, cutoff_nm: float) -> torch.Tensor:
    """SchNet's cutoff envelope 0.5 (cos(pi d / c) + 1) for d < c, else 0 (dimensionless)."""
    inside = d < cutoff_nm
    return torch.where(inside, 0.5 * (torch.cos(d * (math.pi / cutoff_nm)) + 1.0), torch.zeros_like(d))


def check_plain_schnet(net) -> None:
    """The dense and tabulated paths reproduce SchNet with sum readout and no extras."""
    if net.dipole or net.mean is not None or net.std is not None or net.atomref is not None \
            or net.scale is not None:
        raise ValueError("dense SchNet path supports sum readout without dipole/mean/std/atomref")


# ------------------------------------------------------------------------------- weights
class Weights(NamedTuple):
    """SchNet weights as plain tensors (linear layers as (out, in) matrices).

    ``h0`` (N, H) embeddings of the molecule's beads; per block b: ``lin1[b]`` (F, H),
    ``lin2[b]`` (H, F) and bias (H,), ``lin[b]`` (H, H) and bias (H,); read-out ``out1``
    (H/2, H) + bias, ``out2`` (H/2,) + scalar bias; ``coef`` (T, K, 4, F) filter tables
    (None for the exact network).
    """

    h0: torch.Tensor
    lin1: list[torch.Tensor]
    lin2: list[torch.Tensor]
    lin2_b: list[torch.Tensor]
    lin: list[torch.Tensor]
    lin_b: list[torch.Tensor]
    out1: torch.Tensor
    out1_b: torch.Tensor
    out2: torch.Tensor
    out2_b: torch.Tensor
    coef: torch.Tensor | None


def live_weights(net, bead_types: torch.Tensor, coef: torch.Tensor | None = None) -> Weights:
    """The weights of SchNet ``net`` as views of its parameters (gradients flow to them)."""
    check_plain_schnet(net)
    blocks = list(net.interactions)
    return Weights(h0=net.embedding(bead_types),
                   lin1=[b.conv.lin1.weight for b in blocks],
                   lin2=[b.conv.lin2.weight for b in blocks], lin2_b=[b.conv.lin2.bias for b in blocks],
                   lin=[b.lin.weight for b in blocks], lin_b=[b.lin.bias for b in blocks],
                   out1=net.lin1.weight, out1_b=net.lin1.bias, out2=net.lin2.weight[0], out2_b=net.lin2.bias,
                   coef=coef)


# ------------------------------------------------------------------ node-level pieces
def _ssp(u: torch.Tensor) -> torch.Tensor:
    """Shifted softplus, as in SchNet."""
    return F.softplus(u) - LN2


def _node_update(h: torch.Tensor, m: torch.Tensor, w: Weights, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Block b's node update h + lin(ssp(lin2(m))); returns (new h, pre-activation u)."""
    u = F.linear(m, w.lin2[b], w.lin2_b[b])
    return h + F.linear(_ssp(u), w.lin[b], w.lin_b[b]), u


def _readout(h: torch.Tensor, w: Weights) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bead energies (..., N) and dE/dh (..., N, H) of the read-out MLP."""
    pre = F.linear(h, w.out1, w.out1_b)
    e = _ssp(pre) @ w.out2 + w.out2_b
    g_h = (torch.sigmoid(pre) * w.out2) @ w.out1
    return e, g_h


def _message_grad(g_h: torch.Tensor, u: torch.Tensor, w: Weights, b: int) -> torch.Tensor:
    """dE/dm of block b from dE/dh after it (the residual passes g_h on unchanged)."""
    return ((g_h @ w.lin[b]) * torch.sigmoid(u)) @ w.lin2[b]


# ------------------------------------------------------------------ filters per pair
#: maps pair distances d (P, B) nm to one (W, dW/dd) pair of (P, B, F) tensors per block
FilterFn = Callable[[torch.Tensor], list]


def exact_pair_filters(d: torch.Tensor, net) -> list:
    """Filters and d-derivatives of every block of SchNet ``net`` at distances d (P, B).

    The exact network (differentiable in its weights): W = mlp(rbf(d)) * env(d) and
    dW/dd = (mlp' rbf'(d)) * env + mlp * env', written out (forward-mode by hand).
    """
    cutoff = float(net.cutoff)
    inside = d < cutoff
    arg = d * (math.pi / cutoff)
    zero = torch.zeros_like(d)
    env = torch.where(inside, 0.5 * (torch.cos(arg) + 1.0), zero)[..., None]
    denv = torch.where(inside, (-0.5 * math.pi / cutoff) * torch.sin(arg), zero)[..., None]
    smear = net.distance_expansion
    delta = d[..., None] - smear.offset
    rbf = torch.exp(smear.coeff * delta * delta)
    drbf = (2.0 * smear.coeff) * delta * rbf
    out = []
    for blk in net.interactions:
        lin_a, lin_b = blk.mlp[0], blk.mlp[2]
        a = F.linear(rbf, lin_a.weight, lin_a.bias)
        raw = F.linear(_ssp(a), lin_b.weight, lin_b.bias)
        draw = F.linear((drbf @ lin_a.weight.T) * torch.sigmoid(a), lin_b.weight)
        out.append((raw * env, draw * env + raw * denv))
    return out


# ---------------------------------------------------------------- energy and forces
class Pairs(NamedTuple):
    """All bead pairs i<j of a molecule: ``i``, ``j`` (P,), and their incidence matrices
    ``inc_i``, ``inc_j`` (N, P) (1 where bead n is pair p's i, resp. j)."""

    i: torch.Tensor
    j: torch.Tensor
    inc_i: torch.Tensor
    inc_j: torch.Tensor


#: up to this many beads, sums over each bead's pairs are matmuls with the incidence
#: matrices (no scatter: scatter's atomic adds make multithreaded compiled code slow);
#: beyond, their cost (N^3) exceeds a scatter's and index_add is used
INCIDENCE_MAX_BEADS = 48


def all_pairs(n_beads: int, device: torch.device | str | None = None) -> Pairs:
    """:class:`Pairs` of a molecule of ``n_beads`` beads."""
    i, j = torch.triu_indices(n_beads, n_beads, offset=1, device=device)
    beads = torch.arange(n_beads, device=device)[:, None]
    return Pairs(i, j, (beads == i).float(), (beads == j).float())


def pair_sums(a: torch.Tensor, b: torch.Tensor, pairs: Pairs) -> torch.Tensor:
    """For each bead n: sum of a[p] over pairs p = (n, j) plus b[p] over pairs p = (i, n).

    a, b : (P, ...) per-pair values; returns (N, ...).
    """
    n_beads = pairs.inc_i.shape[0]
    if n_beads > INCIDENCE_MAX_BEADS:
        out = torch.zeros((n_beads,) + a.shape[1:], dtype=a.dtype, device=a.device)
        return out.index_add(0, pairs.i, a).index_add(0, pairs.j, b)
    inc_i, inc_j = pairs.inc_i.to(a.dtype), pairs.inc_j.to(a.dtype)
    flat = torch.addmm(inc_i @ a.reshape(a.shape[0], -1), inc_j, b.reshape(b.shape[0], -1))
    return flat.view((n_beads,) + a.shape[1:])


def pair_ends(per_bead: torch.Tensor, pairs: Pairs) -> tuple[torch.Tensor, torch.Tensor]:
    """per_bead (N, ...) at the pairs' first and second beads: two (P, ...) tensors.

    Indexing, except when autograd will differentiate the result for a small molecule:
    then matmuls with the incidence matrices, whose backward is a matmul too instead of a
    slow indexed accumulate (training). Compiled simulation code fuses the indexing.
    """
    n_beads = pairs.inc_i.shape[0]
    for_autograd = torch.is_grad_enabled() and per_bead.requires_grad
    if not for_autograd or n_beads > INCIDENCE_MAX_BEADS or per_bead.shape[0] != n_beads:
        return per_bead[pairs.i], per_bead[pairs.j]
    flat = per_bead.reshape(n_beads, -1)
    shape = (pairs.i.shape[0],) + per_bead.shape[1:]
    return ((pairs.inc_i.to(flat.dtype).T @ flat).view(shape),
            (pairs.inc_j.to(flat.dtype).T @ flat).view(shape))


def sum_over_pairs(per_pair: torch.Tensor, pairs: Pairs, per_bead: torch.Tensor) -> torch.Tensor:
    """For each bead n: sum over its partners m of per_pair[pair(n, m)] * per_bead[m] -> (N, ...)."""
    at_i, at_j = pair_ends(per_bead, pairs)
    return pair_sums(per_pair * at_j, per_pair * at_i, pairs)


def network_forces(x: torch.Tensor, w: Weights, pairs: Pairs, filters: FilterFn) -> tuple[torch.Tensor, torch.Tensor]:
    """SchNet energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm, by an explicit backward pass.

    All pairs i<j of each replica at once, in pair-major layout: (P, B, F) tensors for
    pairs and (N, B, F) for beads, so that gathers move contiguous rows and sums over a
    bead's pairs are matmuls with the incidence matrices (:func:`pair_sums`). Each pair's
    filter is evaluated once per block (W_ij = W_ji). The forces come from one hand-written
    backward sweep instead of autograd; it is made of differentiable ops, so autograd can
    take the forces' gradient in the weights (training). Works eagerly on any device, and
    compiles well.

    Parameters
    ----------
    x : (B, N, 3) coordinates in nm
    w : weights (:func:`frozen_weights` or :func:`live_weights`)
    pairs : the molecule's bead pairs (:func:`all_pairs`)
    filters : per-block filters and slopes at the pair distances
        (:func:`tabulated_pair_filters` or :func:`exact_pair_filters`)
    """
    n_rep = x.shape[0]
    xt = x.transpose(0, 1)
    diff = xt[pairs.j] - xt[pairs.i]                     # (P, B, 3), x_j - x_i
    d = diff.norm(dim=-1)                                # (P, B)
    per_block = filters(d)                               # [(W, dW/dd) (P, B, F)] per block
    h = w.h0[:, None, :].expand(-1, n_rep, -1)           # (N, B, H), the same for all replicas
    saved = []
    for b, (wf, _) in enumerate(per_block):
        # block 0 sees the embeddings only: its lin1 output is one (N, 1, F) row per bead
        y = F.linear(w.h0, w.lin1[0])[:, None, :] if b == 0 else F.linear(h, w.lin1[b])
        h, u = _node_update(h, sum_over_pairs(wf, pairs, y), w, b)  # message sum_j W_ij y_j
        saved.append((y, u))
    e, g_h = _readout(h, w)
    dedd = torch.zeros_like(d)
    for b in reversed(range(len(per_block))):
        (wf, dwf), (y, u) = per_block[b], saved[b]
        g_m = _message_grad(g_h, u, w, b)
        (g_i, g_j), (y_i, y_j) = pair_ends(g_m, pairs), pair_ends(y, pairs)
        dedd = dedd + (dwf * (g_i * y_j + g_j * y_i)).sum(-1)
        if b > 0:  # the embeddings do not depend on x
            g_h = g_h + pair_sums(wf * g_j, wf * g_i, pairs) @ w.lin1[b]
    fp = (dedd / d)[..., None] * diff                    # force on i from pair (i, j); -fp on j
    f = pair_sums(fp, -fp, pairs)
    return e.sum(0), f.transpose(0, 1)


# ------------------------------------------------------------- pruned: pairs within the cutoff
class Edges(NamedTuple):
    """The (pair, replica) entries of B structures whose distance is below the cutoff, flat.

    ``src``, ``dst`` (E,): the entries' first and second bead as rows n * B + b of a bead-major
    (N * B, ...) node tensor; ``diff`` (E, 3) x_j - x_i in nm; ``d`` (E,) distances in nm.
    """

    src: torch.Tensor
    dst: torch.Tensor
    diff: torch.Tensor
    d: torch.Tensor


def edges_within(x: torch.Tensor, pairs: Pairs, cutoff_nm: float) -> Edges:
    """The pairs i<j of each structure in x (B, N, 3) nm closer than ``cutoff_nm`` nm.

    Distances of all pairs are computed (P x B scalars, no feature dimension); only those
    below the cutoff are kept. Beyond the cutoff every filter is zero in value and slope, so
    a pair there adds nothing to energy, messages or forces.
    """
    n_rep = x.shape[0]
    xt = x.transpose(0, 1)
    diff = xt[pairs.j] - xt[pairs.i]                     # (P, B, 3)
    d = diff.norm(dim=-1)                                # (P, B)
    p, b = torch.nonzero(d < cutoff_nm, as_tuple=True)
    return Edges(pairs.i[p] * n_rep + b, pairs.j[p] * n_rep + b, diff[p, b], d[p, b])


def _scatter_sum(n_rows: int, index_a: torch.Tensor, a: torch.Tensor, index_b: torch.Tensor,
                 b: torch.Tensor) -> torch.Tensor:
    """(n_rows, ...) sums: a's rows added at index_a, b's rows at index_b."""
    out = torch.zeros((n_rows,) + a.shape[1:], dtype=a.dtype, device=a.device)
    return out.index_add(0, index_a, a).index_add(0, index_b, b)


def pruned_network_forces(x: torch.Tensor, w: Weights, pairs: Pairs, filters: FilterFn,
                          cutoff_nm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm of :func:`network_forces`, over
    the pairs within ``cutoff_nm`` only (:func:`edges_within`).

    The same network and the same explicit backward pass, on a flat edge list of the
    (pair, replica) entries within the cutoff: (E, F) tensors instead of (P, B, F), node
    tensors bead-major (N * B, ...), gathers by index and sums by ``index_add``. Each kept
    pair's filter is evaluated once (W_ij = W_ji). The pairs left out have zero filters and
    zero slopes, so the result is that of the dense path up to the rounding of the sums.

    Parameters
    ----------
    x : (B, N, 3) coordinates in nm
    w : weights (:func:`live_weights` or :func:`alcg.cg.fast_forces.frozen_weights`)
    pairs : the molecule's bead pairs (:func:`all_pairs`)
    filters : per-block filters and slopes at distances (E,) -> [(W, dW/dd) (E, F)]
    cutoff_nm : the network's cutoff, nm (filters are zero from it on)
    """
    n_rep, n_beads = x.shape[0], x.shape[1]
    rows = n_beads * n_rep
    e_ = edges_within(x, pairs, cutoff_nm)
    per_block = filters(e_.d)
    h = w.h0[:, None, :].expand(-1, n_rep, -1).reshape(rows, -1)   # (N * B, H)
    saved = []
    for b, (wf, _) in enumerate(per_block):
        y = F.linear(h, w.lin1[b])                                  # (N * B, F)
        m = _scatter_sum(rows, e_.src, wf * y[e_.dst], e_.dst, wf * y[e_.src])
        h, u = _node_update(h, m, w, b)
        saved.append((y, u))
    e, g_h = _readout(h, w)
    dedd = torch.zeros_like(e_.d)
    for b in reversed(range(len(per_block))):
        (wf, dwf), (y, u) = per_block[b], saved[b]
        g_m = _message_grad(g_h, u, w, b)
        g_i, g_j, y_i, y_j = g_m[e_.src], g_m[e_.dst], y[e_.src], y[e_.dst]
        dedd = dedd + (dwf * (g_i * y_j + g_j * y_i)).sum(-1)
        if b > 0:  # the embeddings do not depend on x
            g_h = g_h + _scatter_sum(rows, e_.src, wf * g_j, e_.dst, wf * g_i) @ w.lin1[b]
    fp = (dedd / e_.d)[:, None] * e_.diff                          # force on i; -fp on j
    f = _scatter_sum(rows, e_.src, fp, e_.dst, -fp)
    return e.view(n_beads, n_rep).sum(0), f.view(n_beads, n_rep, 3).transpose(0, 1)
