"""Fast forces of a trained, frozen CGSchNet model, for simulation.

Training keeps the exact network (:meth:`alcg.cg.model.CGModel.energy_and_forces`: the dense
kernel :func:`alcg.cg.dense_schnet.network_forces` with exact filters). For simulation the
weights are frozen, and three things make a force evaluation several times cheaper while
giving the same forces (relative RMS error ~1e-6 for the network's forces):

1. **Tabulated filters.** Each interaction block's filter network times its cosine cutoff
   envelope, W_b(d) (one value per filter channel), depends on the pair distance d only.
   It is tabulated once on a uniform grid from 0 to the cutoff, values *and* exact
   derivatives, and evaluated by cubic Hermite interpolation with the interpolant's own
   derivative. The grid is refined until the interpolation error is below a tolerance
   (:func:`tabulate_filters`). The interpolant is C1 in d, so the forces are the exact
   gradient of a (very slightly different) energy: dynamics stay conservative.
2. **All pairs as dense tensors, and a hand-written backward pass** (the shared kernel of
   :mod:`alcg.cg.dense_schnet`). For a small molecule all bead pairs i<j of all replicas are
   handled at once as (pairs, replicas, features) tensors instead of an edge list with
   scatter, each pair's filter once (W_ij = W_ji); the forces come from one explicit
   backward sweep (node linears transposed, pair terms contracted with the filter
   derivative), with no autograd graph.
3. **Pairs beyond the cutoff pruned, for large molecules.** Above :data:`PRUNE_ABOVE_BEADS`
   beads the pair terms are summed over a flat edge list of the (pair, replica) entries
   closer than the cutoff (:func:`alcg.cg.dense_schnet.pruned_network_forces`); the others have
   zero filters and slopes there. Rule: pruned when the molecule has more beads than
   :data:`alcg.cg.dense_schnet.INCIDENCE_MAX_BEADS`, where the dense path's sums are scatters
   already, so both paths add the same terms in the same order (identical forces) and
   pruning only drops work and memory; at or below it, dense (its sums are matmuls, which
   compile well, and small molecules have few pairs beyond the cutoff;
   docs/results/2026-11-30-size-and-memory.md).
4. **torch.compile where it works**: inductor fuses the table look-up, Hermite polynomial
   and pair contractions into a few vectorized loops. Any failure (no C++ compiler, an
   unsupported device, a wrong result) falls back to eager execution, with a warning.

:class:`FastForceField` puts these together, and checks its first evaluation against the
exact model. Units: nm, kJ/mol, kJ/mol/nm.
"""
from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import torch

from alcg.cg.dense_schnet import (INCIDENCE_MAX_BEADS, Weights, cosine_envelope, live_weights, network_forces,
                                pruned_network_forces)

log = logging.getLogger(__name__)

#: force-error tolerance (relative RMS over all force components) that a fast path must
#: meet against the exact model before it is used for simulation
FORCE_RTOL = 1e-4

#: above this many beads the simulation's pair terms skip pairs beyond the cutoff (module doc)
PRUNE_ABOVE_BEADS = INCIDENCE_MAX_BEADS

#: with ``compile`` on (``cg_sim.compile``), a simulation's force function is compiled at this
#: call (before: eager), so that short runs do not pay the compile time (seconds to a minute)
COMPILE_AFTER_CALLS = 1000


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
    max_rel_error : largest interpolation error found, of value or derivative, relative to
        that block's largest |W| or |dW/dd| (dimensionless)
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


def tabulate_filters(net, tol: float = 1e-5, n_intervals: int = 256, max_intervals: int = 65536,
                     dtype: torch.dtype | None = None) -> FilterTable:
    """Tabulate every block's filter (times envelope) of a frozen SchNet ``net``.

    The grid spacing is halved until the Hermite interpolant's error, in value and in
    derivative (checked where the error terms peak in each interval), is below ``tol``
    times that block's largest value (derivative). Tables are built in float64 and stored
    in ``dtype`` (default: the network's).

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
        err = _interpolation_error(net64, coef, h)
        if err <= tol or 2 * n_intervals > max_intervals:
            break
        n_intervals *= 2
    if err > tol:
        log.warning("filter table: error %.2g above tolerance %.2g with %d intervals", err, tol, n_intervals)
    return FilterTable(coef.to(dtype), h, cutoff, err)


def _float64_copy(net):
    import copy

    return copy.deepcopy(net).to(torch.float64)


def _interpolation_error(net64, coef: torch.Tensor, h: float) -> float:
    """Largest relative Hermite error (value or slope) on the grid's intervals.

    Checked where the cubic Hermite error terms peak: the value's at the interval
    midpoints (t = 1/2), the derivative's at t = 1/2 -+ 1/(2 sqrt 3).
    """
    k = torch.arange(coef.shape[1], dtype=torch.float64, device=coef.device)
    off = 0.5 / math.sqrt(3.0)
    d = torch.cat([(k + t) * h for t in (0.5, 0.5 - off, 0.5 + off)])
    v, dv = exact_filters(net64, d)
    worst = 0.0
    for b in range(coef.shape[0]):
        w, dw = hermite_eval(coef[b], d, h)
        scale_v = float(v[b].abs().max()) or 1.0
        scale_d = float(dv[b].abs().max()) or 1.0
        worst = max(worst, float((w - v[b]).abs().max()) / scale_v, float((dw - dv[b]).abs().max()) / scale_d)
    return worst


# ------------------------------------------------------------------------------- weights
def frozen_weights(net, bead_types: torch.Tensor, table: FilterTable) -> Weights:
    """Detached copies of the weights of SchNet ``net``, with the filter tables."""
    with torch.no_grad():
        w = live_weights(net, bead_types, table.coef)
        return Weights(*[[t.detach().clone() for t in v] if isinstance(v, list) else v.detach().clone()
                         for v in w])


# ------------------------------------------------------------------ filters per pair
def tabulated_pair_filters(d: torch.Tensor, coef: torch.Tensor, spacing_nm: float) -> list:
    """Filters and slopes of every block from the Hermite tables ``coef`` (T, K, 4, F)."""
    return [hermite_eval(coef[b], d, spacing_nm) for b in range(coef.shape[0])]


# ---------------------------------------------------------------- energy and forces
def prior_energy_forces(prior, x: torch.Tensor, functional: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Prior energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm.

    ``functional``: by :func:`torch.func.grad`, which also runs inside torch.compile (and
    then fuses well); else by plain autograd, which is faster eagerly.
    """
    if not functional:
        with torch.enable_grad():
            y = x.detach().requires_grad_(True)
            e = prior(y)
            (grad,) = torch.autograd.grad(e.sum(), y)
        return e.detach(), -grad

    def total(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = prior(y)
        return e.sum(), e

    grad, energy = torch.func.grad(total, has_aux=True)(x)
    return energy, -grad


def force_error(f: torch.Tensor, f_ref: torch.Tensor) -> float:
    """Relative RMS error of forces f against reference forces f_ref (dimensionless)."""
    f, f_ref = f.detach().double(), f_ref.detach().double()
    return float((f - f_ref).pow(2).mean().sqrt() / f_ref.pow(2).mean().sqrt().clamp_min(1e-300))


# --------------------------------------------------------------------- the force field
class FastForceField:
    """``force_fn`` of a frozen :class:`~alcg.cg.model.CGModel`: x (B, N, 3) nm -> (E (B,), F (B, N, 3)).

    Tabulated filters, all pairs at once (or, above :data:`PRUNE_ABOVE_BEADS` beads, the
    pairs within the cutoff), explicit backward pass, prior by functional autograd; compiled
    with torch.compile where that works. The weights are copied when
    this object is made: later changes to the model are not seen.

    The first call is checked against the exact model on the configurations it is given:
    if the relative RMS force error exceeds :data:`FORCE_RTOL`, the table is refined (up to
    twice, 10x tighter each time), and if that does not help the exact model is used
    (with a warning). A compiled function is used only if it compiles, runs and gives the
    eager forces (relative RMS below 1e-5); otherwise the eager one, with a warning.

    Parameters
    ----------
    model : the trained model (left unchanged)
    tol : filter-table interpolation tolerance, see :func:`tabulate_filters`
    compile : True: compile at call ``compile_after_calls`` (compiling costs seconds to a
        minute, so short runs stay eager); False: never (the setting ``cg_sim.compile``)
    validate : check the first call against the exact model
    compile_after_calls : the call that compiles, when ``compile`` (1: the first)
    n_intervals : first grid of the filter tables (refined until ``tol`` is met)
    prune : sum pair terms over the pairs within the cutoff only; None: by the bead count
        (more than :data:`PRUNE_ABOVE_BEADS`)
    """

    def __init__(self, model, compile: bool, tol: float = 1e-5, validate: bool = True,
                 compile_after_calls: int = COMPILE_AFTER_CALLS, n_intervals: int = 256,
                 prune: bool | None = None):
        self.model = model
        self.prune = model.n_beads > PRUNE_ABOVE_BEADS if prune is None else prune
        self.tol = tol
        self.n_intervals = n_intervals
        self.compile_at = compile_after_calls if compile else -1
        self.validate = validate
        self.mode = "pending"  # then "tabulated", "tabulated+compiled" or "exact"
        self.info: dict = {"pairs": "pruned" if self.prune else "dense"}
        self.calls = 0
        self._build(tol)
        self._fn = self.eager

    def _build(self, tol: float) -> None:
        net = self.model.net
        self.table = tabulate_filters(net, tol=tol, n_intervals=self.n_intervals) if net is not None else None
        self.weights = frozen_weights(net, self.model.bead_types, self.table) if net is not None else None

    def eager(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy and forces without compilation (any device)."""
        return self._forces(x, functional_prior=False)

    def _forces(self, x: torch.Tensor, functional_prior: bool) -> tuple[torch.Tensor, torch.Tensor]:
        e, f = prior_energy_forces(self.model.prior, x, functional_prior)
        if self.weights is not None:
            filters = functools.partial(tabulated_pair_filters, coef=self.weights.coef,
                                        spacing_nm=self.table.spacing_nm)
            if self.prune:
                e_net, f_net = pruned_network_forces(x, self.weights, self.model.pairs, filters,
                                                     self.table.cutoff_nm)
            else:
                e_net, f_net = network_forces(x, self.weights, self.model.pairs, filters)
            e, f = e + e_net, f + f_net
        return e, f

    def exact(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Energy and forces of the exact model (autograd)."""
        e, f = self.model.energy_and_forces(x.detach())
        return e.detach(), f.detach()

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            self.calls += 1
            if self.mode == "pending":
                self._validate(x)
            if self.calls == self.compile_at and self.mode == "tabulated" and len(x):
                self._try_compile(x)
            if self.mode != "tabulated+compiled":
                return self._fn(x)
            try:
                return self._fn(x)
            except Exception as exc:  # e.g. a recompilation for a new batch size fails
                log.warning("compiled CG forces failed (%s): running eagerly", type(exc).__name__)
                self._fn, self.mode = self.eager, "tabulated"
                return self._fn(x)

    def describe(self) -> str:
        """One line: which path runs, with table and compile facts."""
        facts = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.info.items())
        return f"{self.mode} ({facts})"

    # ------------------------------------------------------------------ set-up
    def _validate(self, x: torch.Tensor) -> None:
        self.mode = "tabulated"
        if self.validate and self.weights is not None and len(x):
            self._check_against_exact(x)
        log.info("CG forces: %s", self.describe())

    def _check_against_exact(self, x: torch.Tensor) -> bool:
        probe = x[:32]
        _, f_ref = self.exact(probe)
        for _ in range(3):
            err = force_error(self.eager(probe)[1], f_ref)
            self.info.update(table_intervals=self.table.n_intervals, table_error=self.table.max_rel_error,
                             force_rel_rms_vs_exact=err)
            if err < FORCE_RTOL:
                return True
            self.tol /= 10.0
            log.info("tabulated forces off by %.2g (relative RMS): refining the filter table", err)
            self._build(self.tol)
        log.warning("tabulated forces differ from the exact model by %.2g (relative RMS): "
                    "simulating with the exact model", err)
        self.mode, self._fn = "exact", self.exact
        return False

    def _try_compile(self, x: torch.Tensor) -> None:
        """Switch to a torch.compile'd :meth:`eager` if it builds, runs and agrees."""
        import time

        t0 = time.perf_counter()
        try:
            fn = torch.compile(functools.partial(self._forces, functional_prior=True))
            if len(x) > 1:  # one kernel for any number of replicas: none to recompile when some stop
                x = x.clone()
                torch._dynamo.mark_dynamic(x, 0)
            _, f = fn(x)
            err = force_error(f, self.eager(x)[1])
            if not err < 1e-5:
                raise RuntimeError(f"compiled forces differ from eager ones by {err:.2g}")
        except Exception as exc:  # no compiler, unsupported backend, wrong result: stay eager
            text = str(exc).strip().splitlines()
            log.warning("torch.compile unavailable for CG forces (%s: %s): running eagerly",
                        type(exc).__name__, text[0][:200] if text else "")
            self.info["compile_error"] = type(exc).__name__
            return
        self._fn, self.mode = fn, "tabulated+compiled"
        self.info["compile_s"] = time.perf_counter() - t0
        log.info("CG forces: %s", self.describe())
