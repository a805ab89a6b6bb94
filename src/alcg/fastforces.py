"""Fast forces of a trained, frozen CGSchNet model for simulation.

Training keeps the exact network (:meth:`alcg.model.CGModel.energy_and_forces`). For
simulation the weights are frozen, so three things make one force evaluation much cheaper
while giving the same forces (relative RMS error ~1e-6 to 1e-5, see :func:`force_error`):

1. **Tabulated filters.** Each interaction block's filter network times its cosine cutoff
   envelope, W_b(d) (one value per filter channel), depends on the pair distance d only.
   It is tabulated once on a uniform grid from 0 to the cutoff, values *and* exact
   derivatives, and evaluated by cubic Hermite interpolation (C1, with the analytic
   derivative of the interpolant). The grid is refined until the interpolation error at the
   interval midpoints is below a tolerance (:func:`tabulate_filters`). The interpolated
   filter is a smooth function of d, so the forces are the exact gradient of a (very
   slightly different) energy: dynamics stay conservative.
2. **All pairs as dense tensors, and a hand-written backward pass.** For a small molecule
   every bead pair of a replica is handled at once, as (pairs, replicas, features) or
   (replicas, N, N, features) tensors instead of an edge list with scatter; forces come
   from one explicit backward sweep (node linears transposed, pair terms contracted with
   the filter derivative), with no autograd graph.
3. **Optional torch.compile** of the dense formulation: inductor fuses the table look-up,
   Hermite polynomial and pair contractions into a few vectorized loops. Any failure (no C++
   compiler, unsupported backend) falls back to eager, which is checked to give the same
   forces.

Units: nm, kJ/mol, kJ/mol/nm.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

LN2 = math.log(2.0)

#: force-error tolerance (relative RMS over all force components) that a fast path must
#: meet against the exact model before it is used for simulation
FORCE_RTOL = 1e-4


# ----------------------------------------------------------------------------- tabulation
@dataclass
class FilterTable:
    """Cubic Hermite tables of the filters W_b(d) of all interaction blocks.

    Attributes
    ----------
    coef : (T, K, 4, F) polynomial coefficients per interval k = [k h, (k+1) h] in the local
        coordinate t = d / h - k in [0, 1]: W = c0 + c1 t + c2 t^2 + c3 t^3 (the network's
        filter units); the last knot is the cutoff, where value and slope are zero
    spacing_nm : grid spacing h in nm
    cutoff_nm : filters are zero (value and slope) from the cutoff on
    max_rel_error : largest interpolation error found at interval midpoints, of value or
        derivative, relative to that block's largest |W| or |dW/dd| (dimensionless)
    """

    coef: torch.Tensor
    spacing_nm: float
    cutoff_nm: float
    max_rel_error: float

    @property
    def n_intervals(self) -> int:
        return self.coef.shape[1]


def exact_filters(net, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Filters of every block times the cosine envelope, and their d-derivatives.

    Parameters
    ----------
    net : :class:`torch_geometric.nn.SchNet`
    d : (K,) distances in nm

    Returns
    -------
    (T, K, F) values and (T, K, F) derivatives in 1/nm
    """
    from alcg.model import cosine_envelope

    def filt(dd: torch.Tensor) -> torch.Tensor:
        rbf = net.distance_expansion(dd)
        env = cosine_envelope(dd, net.cutoff)[:, None]
        return torch.stack([blk.mlp(rbf) * env for blk in net.interactions])

    with torch.no_grad():
        values, slopes = torch.func.jvp(filt, (d,), (torch.ones_like(d),))
    return values, slopes


def _hermite_coefficients(v: torch.Tensor, dv: torch.Tensor, h: float) -> torch.Tensor:
    """(T, K-1, 4, F) cubic coefficients in t from knot values v and slopes dv (T, K, F)."""
    v0, v1, s0, s1 = v[:, :-1], v[:, 1:], h * dv[:, :-1], h * dv[:, 1:]
    c2 = 3.0 * (v1 - v0) - 2.0 * s0 - s1
    c3 = 2.0 * (v0 - v1) + s0 + s1
    return torch.stack([v0, s0, c2, c3], dim=2)


def hermite_eval(coef: torch.Tensor, d: torch.Tensor, spacing_nm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Interpolated filters and slopes of one table ``coef`` (K, 4, F) at distances d (...,).

    Distances beyond the table are clamped to its end, where the filters are zero.
    Returns values (..., F) and derivatives (..., F) in 1/nm.
    """
    k, t = _knot(d, spacing_nm, coef.shape[0])
    c = coef[k]
    t = t[..., None]
    w = c[..., 0, :] + t * (c[..., 1, :] + t * (c[..., 2, :] + t * c[..., 3, :]))
    dw = (c[..., 1, :] + t * (2.0 * c[..., 2, :] + 3.0 * t * c[..., 3, :])) / spacing_nm
    return w, dw


def _knot(d: torch.Tensor, spacing_nm: float, n_intervals: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Interval index (long) and local coordinate t in [0, 1] of distances d.

    Distances beyond the grid are clamped to its end (the cutoff: zero value and slope).
    """
    s = torch.clamp(d, min=0.0, max=n_intervals * spacing_nm) / spacing_nm
    k = torch.clamp(torch.floor(s), max=n_intervals - 1)
    return k.long(), s - k


def tabulate_filters(net, tol: float = 1e-6, n_intervals: int = 256, max_intervals: int = 65536,
                     dtype: torch.dtype | None = None) -> FilterTable:
    """Tabulate every block's filter (times envelope) of a frozen SchNet ``net``.

    The grid spacing is halved until the Hermite interpolant's error at all interval
    midpoints, in value and in derivative, is below ``tol`` times that block's largest
    value (derivative). Tables are built in float64 and stored in ``dtype`` (default: the
    network's).

    Parameters
    ----------
    net : :class:`torch_geometric.nn.SchNet` (its weights are read, not changed)
    tol : relative interpolation tolerance (dimensionless)
    n_intervals : intervals of the first grid, doubled until ``tol`` is met
    """
    dtype = dtype or next(net.parameters()).dtype
    device = next(net.parameters()).device
    cutoff = float(net.cutoff)
    net64 = _float64_copy(net)
    while True:
        h = cutoff / n_intervals
        knots = torch.linspace(0.0, cutoff, n_intervals + 1, dtype=torch.float64, device=device)
        v, dv = exact_filters(net64, knots)
        v[:, -1], dv[:, -1] = 0.0, 0.0  # exactly zero at the cutoff (envelope and slope)
        coef = _hermite_coefficients(v, dv, h)
        err = _midpoint_error(net64, coef, h)
        if err <= tol or 2 * n_intervals > max_intervals:
            break
        n_intervals *= 2
    if err > tol:
        log.warning("filter table: error %.2g above tolerance %.2g with %d intervals", err, tol, n_intervals)
    return FilterTable(coef.to(dtype), h, cutoff, err)


def _float64_copy(net):
    import copy

    return copy.deepcopy(net).to(torch.float64)


def _midpoint_error(net64, coef: torch.Tensor, h: float) -> float:
    """Largest relative Hermite error (value or slope) at the interval midpoints."""
    mid = (torch.arange(coef.shape[1], dtype=torch.float64, device=coef.device) + 0.5) * h
    v, dv = exact_filters(net64, mid)
    worst = 0.0
    for b in range(coef.shape[0]):
        w, dw = hermite_eval(coef[b], mid, h)
        scale_v = float(v[b].abs().max()) or 1.0
        scale_d = float(dv[b].abs().max()) or 1.0
        worst = max(worst, float((w - v[b]).abs().max()) / scale_v, float((dw - dv[b]).abs().max()) / scale_d)
    return worst


# ------------------------------------------------------------------------ frozen weights
class Weights(NamedTuple):
    """Frozen SchNet weights as plain tensors (linear layers as (out, in) matrices).

    ``h0`` (N, H) embeddings of the molecule's beads; per block b: ``lin1[b]`` (F, H),
    ``lin2[b]`` (H, F) and bias (H,), ``lin[b]`` (H, H) and bias (H,); read-out ``out1``
    (H/2, H) + bias, ``out2`` (H/2,) + scalar bias; ``coef`` (T, K, 4, F) filter tables.
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
    coef: torch.Tensor


def frozen_weights(net, bead_types: torch.Tensor, table: FilterTable) -> Weights:
    """Copy the weights of SchNet ``net`` (detached) for beads of types ``bead_types`` (N,)."""
    from alcg.model import _check_plain_schnet

    _check_plain_schnet(net)
    with torch.no_grad():
        blocks = list(net.interactions)
        w = Weights(
            h0=net.embedding(bead_types).detach().clone(),
            lin1=[b.conv.lin1.weight.detach().clone() for b in blocks],
            lin2=[b.conv.lin2.weight.detach().clone() for b in blocks],
            lin2_b=[b.conv.lin2.bias.detach().clone() for b in blocks],
            lin=[b.lin.weight.detach().clone() for b in blocks],
            lin_b=[b.lin.bias.detach().clone() for b in blocks],
            out1=net.lin1.weight.detach().clone(), out1_b=net.lin1.bias.detach().clone(),
            out2=net.lin2.weight.detach()[0].clone(), out2_b=net.lin2.bias.detach().clone(),
            coef=table.coef.detach().clone())
    return w


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


# ------------------------------------------------- formulation 1: pairs i<j (eager)
def forces_pairs(x: torch.Tensor, w: Weights, pair_i: torch.Tensor, pair_j: torch.Tensor,
                 spacing_nm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Network energy (B,) and forces (B, N, 3) with pairs i<j in pair-major layout.

    Each pair's filter is looked up once per block (W_ij = W_ji); tensors are (P, B, F) for
    pairs and (N, B, F) for beads, so gathers and scatters move contiguous rows. Suited to
    eager execution on any device.
    """
    xt = x.transpose(0, 1)
    diff = xt[pair_j] - xt[pair_i]                       # (P, B, 3), x_j - x_i
    d = diff.norm(dim=-1)                                # (P, B)
    n_blocks = len(w.lin1)
    h = w.h0[:, None, :].expand(-1, x.shape[0], -1)
    saved = []
    for b in range(n_blocks):
        wf, dwf = hermite_eval(w.coef[b], d, spacing_nm)  # (P, B, F) each
        y = F.linear(h, w.lin1[b])                       # (N, B, F)
        m = torch.zeros_like(y).index_add_(0, pair_i, wf * y[pair_j]).index_add_(0, pair_j, wf * y[pair_i])
        h, u = _node_update(h, m, w, b)
        saved.append((wf, dwf, y, u))
    e, g_h = _readout(h, w)
    dedd = torch.zeros_like(d)
    for b in reversed(range(n_blocks)):
        wf, dwf, y, u = saved[b]
        g_m = _message_grad(g_h, u, w, b)
        gi, gj = g_m[pair_i], g_m[pair_j]
        dedd += (dwf * (gi * y[pair_j] + gj * y[pair_i])).sum(-1)
        g_y = torch.zeros_like(g_m).index_add_(0, pair_j, wf * gi).index_add_(0, pair_i, wf * gj)
        g_h = g_h + g_y @ w.lin1[b]
    fp = (dedd / d)[..., None] * diff                    # force on i from pair (i, j); -fp on j
    f = torch.zeros_like(xt).index_add_(0, pair_i, fp).index_add_(0, pair_j, -fp)
    return e.sum(0), f.transpose(0, 1)


# ------------------------------------- formulation 2: all ordered pairs (for compile)
def forces_dense(x: torch.Tensor, w: Weights, spacing_nm: float, cutoff_nm: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Network energy (B,) and forces (B, N, 3) on (B, N, N, F) all-pairs tensors.

    Written for torch.compile: the table look-up, Hermite polynomial, pair product and
    sum over partners are one fused loop per contraction, so no (B, N, N, F) tensor is
    stored. (Eagerly it would materialize them: use :func:`forces_pairs` there.)
    """
    n = x.shape[1]
    diff = x[:, None, :, :] - x[:, :, None, :]           # (B, N, N, 3): x_j - x_i
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    d = torch.sqrt((diff * diff).sum(-1) + eye.to(x.dtype))  # 1 on the diagonal (masked)
    valid = ((d < cutoff_nm) & ~eye).to(x.dtype)[..., None]
    k, t = _knot(d, spacing_nm, w.coef.shape[1])
    t = t[..., None]
    n_blocks = len(w.lin1)
    h = w.h0.expand(x.shape[0], -1, -1)
    saved = []
    for b in range(n_blocks):
        c = w.coef[b][k]                                 # (B, N, N, 4, F), fused away
        wf = (c[..., 0, :] + t * (c[..., 1, :] + t * (c[..., 2, :] + t * c[..., 3, :]))) * valid
        y = F.linear(h, w.lin1[b])                       # (B, N, F)
        m = (wf * y[:, None, :, :]).sum(2)
        h, u = _node_update(h, m, w, b)
        saved.append((y, u))
    e, g_h = _readout(h, w)
    dedd = torch.zeros_like(d)
    for b in reversed(range(n_blocks)):
        y, u = saved[b]
        g_m = _message_grad(g_h, u, w, b)
        c = w.coef[b][k]
        wf = (c[..., 0, :] + t * (c[..., 1, :] + t * (c[..., 2, :] + t * c[..., 3, :]))) * valid
        dwf = (c[..., 1, :] + t * (2.0 * c[..., 2, :] + 3.0 * t * c[..., 3, :])) * (valid / spacing_nm)
        dedd = dedd + (dwf * g_m[:, :, None, :] * y[:, None, :, :]).sum(-1)
        g_h = g_h + (wf * g_m[:, None, :, :]).sum(2) @ w.lin1[b]
    dedd = dedd + dedd.transpose(1, 2)                   # both orders of each pair
    f = ((dedd / d)[..., None] * diff).sum(2)
    return e.sum(-1), f
