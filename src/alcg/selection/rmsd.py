"""Batched C-alpha RMSD after optimal superposition (QCP), as dense linear algebra in torch.

The RMSD of two centered structures x, y of N beads is sqrt(e / N) with
e = G_x + G_y - 2 lambda_max, where G is the sum of squared coordinates (nm^2) and lambda_max
the largest root of the quartic P(l) = l^4 + c2 l^2 + c1 l + c0 built from the 3x3 correlation
matrix M = x^T y (Theobald 2005, the QCP method MDTraj uses). Here the correlation matrices of
a tile of A x B frame pairs are one matmul, (3A, N) @ (N, 3B), and lambda_max comes from a
fixed number of Newton steps started at (G_x + G_y) / 2. Since P is increasing and convex
beyond its largest root, Newton from there descends monotonically onto lambda_max: every step
is an upper bound on lambda_max, so ``e`` after any number of steps is a lower bound on the
exact ``e`` (up to rounding). :func:`lower_bound_e` works in fp32 and subtracts a bound on its
rounding error, so its values are true lower bounds; the exact values (:func:`exact_e`) are
fp64 Newton iterated to convergence. Search code uses the fp32 bounds to discard pairs and
the fp64 values for every decision (which pair is nearest, which side of a threshold).

The same code runs on CPU and GPU (the device of the tensors given). On a CPU the fp32 tile's
elementwise part (~150 flops per pair) runs as one fused C loop (:mod:`alcg.selection.qcp_native`, the
same arithmetic) where a C compiler is available, since eager torch makes ~180 passes over
memory for it; elsewhere, and on a GPU, the torch code below runs.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from alcg.selection import qcp_native

log = logging.getLogger(__name__)

#: Newton steps of the fp32 tile kernel; unconverged values stay lower bounds (see module doc)
FP32_NEWTON_STEPS = 4
#: safety factors of the fp32 rounding-error bound (see :func:`_qcp_lower_e`). At factors 1 the
#: largest overshoot measured (10, 35, 80 beads; RMSD 1e-5 to 0.5 nm; rotated copies) was 0.15
#: of the bound, so these leave a margin of more than 10x.
_ROOT_ERR, _MATMUL_ERR = 16.0, 2.0
_EPS32 = float(torch.finfo(torch.float32).eps)


def center(xyz: np.ndarray) -> np.ndarray:
    """Frames (F, N, 3) nm with each frame's centroid moved to the origin, fp64."""
    x = np.asarray(xyz, dtype=np.float64)
    return x - x.mean(axis=1, keepdims=True)


def _coefficients(s) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """QCP quartic coefficients (c2, c1, c0) from correlation components ``s(i, j)``."""
    sxx, sxy, sxz = s(0, 0), s(0, 1), s(0, 2)
    syx, syy, syz = s(1, 0), s(1, 1), s(1, 2)
    szx, szy, szz = s(2, 0), s(2, 1), s(2, 2)
    sxx2, syy2, szz2 = sxx * sxx, syy * syy, szz * szz
    sxy2, syz2, sxz2 = sxy * sxy, syz * syz, sxz * sxz
    syx2, szy2, szx2 = syx * syx, szy * szy, szx * szx
    syzszy_syyszz2 = 2.0 * (syz * szy - syy * szz)
    sxx2syy2szz2syz2szy2 = syy2 + szz2 - sxx2 + syz2 + szy2
    c2 = -2.0 * (sxx2 + syy2 + szz2 + sxy2 + syx2 + sxz2 + szx2 + syz2 + szy2)
    c1 = 8.0 * (sxx * syz * szy + syy * szx * sxz + szz * sxy * syx
                - sxx * syy * szz - syz * szx * sxy - szy * syx * sxz)
    sxzpszx, syzpszy, sxypsyx = sxz + szx, syz + szy, sxy + syx
    syzmszy, sxzmszx, sxymsyx = syz - szy, sxz - szx, sxy - syx
    sxxpsyy, sxxmsyy = sxx + syy, sxx - syy
    sxy2sxz2syx2szx2 = sxy2 + sxz2 - syx2 - szx2
    c0 = (sxy2sxz2syx2szx2 * sxy2sxz2syx2szx2
          + (sxx2syy2szz2syz2szy2 + syzszy_syyszz2) * (sxx2syy2szz2syz2szy2 - syzszy_syyszz2)
          + (-sxzpszx * syzmszy + sxymsyx * (sxxmsyy - szz)) * (-sxzmszx * syzpszy + sxymsyx * (sxxmsyy + szz))
          + (-sxzpszx * syzpszy - sxypsyx * (sxxpsyy - szz)) * (-sxzmszx * syzmszy - sxypsyx * (sxxpsyy + szz))
          + (sxypsyx * syzpszy + sxzpszx * (sxxmsyy + szz)) * (-sxymsyx * syzmszy + sxzpszx * (sxxpsyy + szz))
          + (sxypsyx * syzmszy + sxzmszx * (sxxmsyy - szz)) * (-sxymsyx * syzpszy + sxzmszx * (sxxpsyy - szz)))
    return c2, c1, c0


def _newton(lam, c2, c1, c0):
    """One Newton step on the QCP quartic; returns (new lambda, P'(lambda))."""
    x2 = lam * lam
    b = (x2 + c2) * lam
    a = b + c1
    dp = 2.0 * x2 * lam + b + a
    p = a * lam + c0
    step = torch.where(dp > 0, p / torch.where(dp > 0, dp, 1.0), torch.zeros_like(p))
    return lam - step, dp


def _qcp_lower_e(m: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor, n_beads: int) -> torch.Tensor:
    """Lower bounds on e = N * MSD (nm^2) from fp32 correlations ``m`` (3, A, 3, B).

    Rounding bound: the root's error is at most ~eps * S / P'(lambda) with S the sum of the
    quartic's term magnitudes, and the correlations' error ~eps * N * (G_x + G_y); both are
    scaled by safety factors (tests check the bound on near-identical and far pairs).
    NaN or non-finite values become -inf (never discarded).
    """
    c2, c1, c0 = _coefficients(lambda i, j: m[i, :, j, :])
    gsum = gx + gy
    lam = 0.5 * gsum
    dp = torch.ones_like(lam)
    for _ in range(FP32_NEWTON_STEPS):
        lam, dp = _newton(lam, c2, c1, c0)
    x2 = lam * lam
    size = x2 * x2 + c2.abs() * x2 + c1.abs() * lam.abs() + c0.abs()
    root_err = _ROOT_ERR * _EPS32 * size / dp.clamp_min(1e-30)
    err = 2.0 * root_err + _MATMUL_ERR * _EPS32 * (n_beads + 8) * gsum
    low = gsum - 2.0 * lam - err
    return torch.nan_to_num(low, nan=-torch.inf, posinf=-torch.inf, neginf=-torch.inf)


class Frames:
    """Centered frames on a torch device: fp32 rows for tile matmuls, fp64 for exact values.

    Parameters
    ----------
    xyz : (F, N, 3) nm; centered here
    device : torch device of the computations
    """

    def __init__(self, xyz: np.ndarray, device: str | torch.device = "cpu"):
        x = center(xyz)
        self.n_frames, self.n_beads = x.shape[0], x.shape[1]
        self.device = torch.device(device)
        self.x64 = torch.as_tensor(x, device=self.device)
        self.g64 = (self.x64 ** 2).sum(dim=(1, 2))
        x32 = self.x64.float()
        self.rows32 = x32.permute(2, 0, 1).contiguous()  # (3, F, N): left factor of tile matmuls
        self.cols32 = x32.permute(1, 2, 0).contiguous()  # (N, 3, F): right factor
        self.g32 = self.g64.float()
        self.rg = torch.sqrt(self.g64 / max(self.n_beads, 1)).cpu().numpy()

    def __len__(self) -> int:
        return self.n_frames


def lower_bound_e(a: Frames, ia, b: Frames, ib, native: bool = True) -> torch.Tensor:
    """True lower bounds (fp32) on e = N * MSD (nm^2) for all pairs of frames a[ia] x b[ib], (A, B).

    ``native``: on a CPU, use the fused C kernel where it is available (same values).
    """
    ia, ib = _index(ia, a), _index(ib, b)
    n = a.n_beads
    left = a.rows32[:, ia] if isinstance(ia, torch.Tensor) else a.rows32[:, ia.start:ia.stop]
    right = b.cols32[:, :, ib] if isinstance(ib, torch.Tensor) else b.cols32[:, :, ib.start:ib.stop]
    n_a, n_b = left.shape[1], right.shape[2]
    ga, gb = a.g32[ia], b.g32[ib]
    if native and a.device.type == "cpu" and qcp_native.load(FP32_NEWTON_STEPS) is not None:
        return torch.from_numpy(qcp_native.lower_e(left.permute(1, 2, 0).numpy(), right.numpy(), ga.numpy(),
                                                   gb.numpy(), FP32_NEWTON_STEPS, _ROOT_ERR * _EPS32,
                                                   _MATMUL_ERR * _EPS32 * (n + 8), torch.get_num_threads()))
    m = left.reshape(-1, n) @ right.reshape(n, -1)  # (3A, 3B): component (i, j) of (a, b) at [i A + a, j B + b]
    return _qcp_lower_e(m.view(3, n_a, 3, n_b), ga[:, None], gb[None, :], n)


def _index(i, frames: Frames) -> torch.Tensor | slice:
    """Frame indices as a device tensor, or a slice when they are a contiguous range."""
    if isinstance(i, slice):
        return i
    i = torch.as_tensor(np.asarray(i, dtype=np.int64), device=frames.device)
    if len(i) > 1 and int(i[0]) + len(i) - 1 == int(i[-1]) and bool((i.diff() == 1).all()):
        return slice(int(i[0]), int(i[-1]) + 1)
    return i


def exact_e(a: Frames, ia, b: Frames, ib, max_steps: int = 100) -> torch.Tensor:
    """Exact e = N * MSD (nm^2), fp64, for the pairs (a[ia[k]], b[ib[k]]) (same lengths)."""
    ia, ib = torch.as_tensor(ia, device=a.device), torch.as_tensor(ib, device=b.device)
    if len(ia) == 0:
        return torch.zeros(0, dtype=torch.float64, device=a.device)
    m = torch.einsum("pni,pnj->pij", a.x64[ia], b.x64[ib])
    c2, c1, c0 = _coefficients(lambda i, j: m[:, i, j])
    gsum = a.g64[ia] + b.g64[ib]
    lam = 0.5 * gsum
    for _ in range(max_steps):
        new, _ = _newton(lam, c2, c1, c0)
        done = (new - lam).abs() <= 1e-15 * new.abs().clamp_min(1e-300)
        lam = new
        if bool(done.all()):
            break
    return (gsum - 2.0 * lam).clamp_min(0.0)


def to_rmsd(e: torch.Tensor | np.ndarray, n_beads: int) -> np.ndarray:
    """RMSD (nm) from e = N * MSD (nm^2)."""
    e = e.cpu().numpy() if isinstance(e, torch.Tensor) else np.asarray(e)
    return np.sqrt(np.maximum(e, 0.0) / n_beads)


def exact_rmsd_matrix(a: Frames, ia, b: Frames, ib) -> np.ndarray:
    """Exact RMSD (nm, fp64) of every pair a[ia] x b[ib], (A, B); for small blocks."""
    ia, ib = np.asarray(ia, dtype=np.int64), np.asarray(ib, dtype=np.int64)
    pa, pb = np.repeat(ia, len(ib)), np.tile(ib, len(ia))
    return to_rmsd(exact_e(a, pa, b, pb), a.n_beads).reshape(len(ia), len(ib))
