"""The fp32 QCP bound kernel of :mod:`alcg.selection.rmsd` as one fused C loop, for CPUs.

Eager torch evaluates the ~150 elementwise flops per pair of :func:`alcg.selection.rmsd._qcp_lower_e`
as ~180 separate passes over memory, which makes it slower than MDTraj on a CPU; on a GPU
that is cheap, and there the torch code runs. torch.compile fuses the same loop, but compiling
it took over ten minutes on the 2-core test machine. This module compiles the identical
arithmetic (same formulas, same fixed Newton steps, same error bound) with the system C
compiler in about a second, once per machine (cached under ``$XDG_CACHE_HOME/alcg`` or
``~/.cache/alcg``, keyed by a hash of the source, flags and CPU), and loads it with ctypes.
Without a compiler (or with ``ALCG_NATIVE_QCP=0``), :func:`load` returns None and the torch
code runs instead. Tests check that both give the same bounds. Up to :data:`PRODUCT_MIN_BEADS` beads the loop also accumulates the 3x3
correlations in registers; above, they come from a BLAS product (2.6x faster at 80 beads).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SOURCE = r"""
#include <math.h>
#define NEWTON_STEPS @STEPS@
typedef float vf __attribute__((vector_size(@BYTES@)));
typedef int vi __attribute__((vector_size(@BYTES@)));
#define W @LANES@

static inline vf sel(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
static inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }
static inline vf load(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }

/* W pairs at once: correlation components s[9], G_a + G_b in gsum; returns the bounds. */
static inline vf bound(const vf *s, vf gsum, float root_err, float mat_err) {
    vf sxx = s[0], sxy = s[1], sxz = s[2], syx = s[3], syy = s[4], syz = s[5];
    vf szx = s[6], szy = s[7], szz = s[8];
            vf sxx2 = sxx*sxx, syy2 = syy*syy, szz2 = szz*szz;
            vf sxy2 = sxy*sxy, syz2 = syz*syz, sxz2 = sxz*sxz;
            vf syx2 = syx*syx, szy2 = szy*szy, szx2 = szx*szx;
            vf syzszy_syyszz2 = 2.0f * (syz*szy - syy*szz);
            vf sxx2syy2szz2syz2szy2 = syy2 + szz2 - sxx2 + syz2 + szy2;
            vf c2 = -2.0f * (sxx2 + syy2 + szz2 + sxy2 + syx2 + sxz2 + szx2 + syz2 + szy2);
            vf c1 = 8.0f * (sxx*syz*szy + syy*szx*sxz + szz*sxy*syx
                               - sxx*syy*szz - syz*szx*sxy - szy*syx*sxz);
            vf sxzpszx = sxz + szx, syzpszy = syz + szy, sxypsyx = sxy + syx;
            vf syzmszy = syz - szy, sxzmszx = sxz - szx, sxymsyx = sxy - syx;
            vf sxxpsyy = sxx + syy, sxxmsyy = sxx - syy;
            vf sxy2sxz2syx2szx2 = sxy2 + sxz2 - syx2 - szx2;
            vf c0 = sxy2sxz2syx2szx2 * sxy2sxz2syx2szx2
              + (sxx2syy2szz2syz2szy2 + syzszy_syyszz2) * (sxx2syy2szz2syz2szy2 - syzszy_syyszz2)
              + (-sxzpszx*syzmszy + sxymsyx*(sxxmsyy - szz)) * (-sxzmszx*syzpszy + sxymsyx*(sxxmsyy + szz))
              + (-sxzpszx*syzpszy - sxypsyx*(sxxpsyy - szz)) * (-sxzmszx*syzmszy - sxypsyx*(sxxpsyy + szz))
              + (sxypsyx*syzpszy + sxzpszx*(sxxmsyy + szz)) * (-sxymsyx*syzmszy + sxzpszx*(sxxpsyy + szz))
              + (sxypsyx*syzmszy + sxzmszx*(sxxmsyy - szz)) * (-sxymsyx*syzpszy + sxzmszx*(sxxpsyy - szz));
    vf lam = 0.5f * gsum, dp = lam * 0.0f + 1.0f;
    vf zero = lam * 0.0f, inf = zero + INFINITY;
    for (int k = 0; k < NEWTON_STEPS; ++k) {
        vf x2 = lam * lam, bb = (x2 + c2) * lam, aa = bb + c1;
        dp = 2.0f * x2 * lam + bb + aa;
        vf p = aa * lam + c0;
        lam = lam - p / sel(dp > zero, dp, inf);
    }
    vf x2 = lam * lam;
    vf size = x2 * x2 + vabs(c2) * x2 + vabs(c1) * vabs(lam) + vabs(c0);
    vf err = 2.0f * root_err * size / sel(dp > zero + 1e-30f, dp, zero + 1e-30f) + mat_err * gsum;
    vf low = gsum - 2.0f * lam - err;
    return sel((low == low) & (vabs(low) < inf), low, zero - INFINITY);
}

/* xa: (A, N, 3) coordinates; yb: (N, 3, B) with B a multiple of W; out: (A, B) lower bounds
   on e = N * MSD. The correlations of W pairs are accumulated in registers (no M in memory). */
void qcp_lower(const float *xa, const float *yb, long A, long B, int N, const float *ga,
               const float *gb, float root_err, float mat_err, float *out) {
    for (long a = 0; a < A; ++a) {
        const float *x = xa + a * N * 3;
        for (long b0 = 0; b0 < B; b0 += W) {
            vf s[9];
            for (int c = 0; c < 9; ++c) s[c] = (vf){0};
            for (int n = 0; n < N; ++n) {
                const float *y = yb + (long)n * 3 * B + b0;
                vf y0 = load(y), y1 = load(y + B), y2 = load(y + 2 * B);
                for (int i = 0; i < 3; ++i) {
                    float xi = x[3 * n + i];
                    s[3 * i] += xi * y0; s[3 * i + 1] += xi * y1; s[3 * i + 2] += xi * y2;
                }
            }
            vf outv = bound(s, load(gb + b0) + ga[a], root_err, mat_err);
            __builtin_memcpy(out + a * B + b0, &outv, sizeof outv);
        }
    }
}

/* m: (3A, 3B) from a BLAS product, component (i, j) of pair (a, b) at m[(i A + a) 3B + j B + b],
   B a multiple of W; out: (A, B). For many beads, where the product beats the loop above. */
void qcp_lower_m(const float *m, long A, long B, const float *ga, const float *gb,
                 float root_err, float mat_err, float *out) {
    for (long a = 0; a < A; ++a) {
        for (long b0 = 0; b0 < B; b0 += W) {
            vf s[9];
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) s[3 * i + j] = load(m + (i * A + a) * 3 * B + j * B + b0);
            vf outv = bound(s, load(gb + b0) + ga[a], root_err, mat_err);
            __builtin_memcpy(out + a * B + b0, &outv, sizeof outv);
        }
    }
}
"""
#: above this many beads the correlations come from a BLAS product instead of the fused loop
PRODUCT_MIN_BEADS = 16
#: pairs per vector of the C loop (B is padded to a multiple): 16 lanes are two AVX2 registers
#: or one AVX-512 register, two independent Newton chains per step (1.4x faster than 8 here)
LANES = 16
FLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno"]
_LIB: dict = {}
_POOL: dict = {}


def _cpu_id() -> str:
    """This CPU's instruction-set flags: part of the cache key, since -march=native code built
    on one node type of a cluster may not run on another that shares the home directory."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    import platform

    return platform.machine() + platform.processor()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alcg"


def load(newton_steps: int = 8):
    """The compiled ``qcp_lower`` with ``newton_steps`` Newton steps (ctypes), or None where no C
    compiler works; cached."""
    if newton_steps in _LIB:
        return _LIB[newton_steps]
    fn = None
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc and os.environ.get("ALCG_NATIVE_QCP", "1") != "0":
        source = SOURCE.replace("@STEPS@", str(int(newton_steps))).replace("@LANES@", str(LANES)).replace(
            "@BYTES@", str(4 * LANES))
        key = hashlib.sha256((source + " ".join(FLAGS) + cc + _cpu_id()).encode()).hexdigest()[:16]
        lib = _cache_dir() / f"qcp_{key}.so"
        try:
            if not lib.exists():
                lib.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=lib.parent) as d:
                    src, out = Path(d) / "qcp.c", Path(d) / "qcp.so"
                    src.write_text(source)
                    subprocess.run([cc, *FLAGS, str(src), "-o", str(out), "-lm"], check=True,
                                   capture_output=True, timeout=120)
                    os.replace(out, lib)
            dll = ctypes.CDLL(str(lib))
            f32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
            fn = dll.qcp_lower
            fn.argtypes = [f32, f32, ctypes.c_long, ctypes.c_long, ctypes.c_int, f32, f32, ctypes.c_float,
                           ctypes.c_float, f32]
            fn.restype = None
            fn.from_product = dll.qcp_lower_m
            fn.from_product.argtypes = [f32, ctypes.c_long, ctypes.c_long, f32, f32, ctypes.c_float,
                                        ctypes.c_float, f32]
            fn.from_product.restype = None
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("native QCP kernel unavailable (%s); using torch", str(exc).splitlines()[0])
            fn = None
    _LIB[newton_steps] = fn
    return fn


def lower_e(xa: np.ndarray, yb: np.ndarray, ga: np.ndarray, gb: np.ndarray, steps: int,
            root_err: float, mat_err: float, threads: int = 1) -> np.ndarray:
    """Lower bounds on e (A, B) nm^2 of frames ``xa`` (A, N, 3) against ``yb`` (N, 3, B), fp32
    and centered, with G (sum of squares) ``ga`` (A,) and ``gb`` (B,); see :mod:`alcg.selection.rmsd`.

    ``root_err`` and ``mat_err`` are the error bound's coefficients already multiplied by fp32
    eps (and, for ``mat_err``, by N + 8). ``threads``: rows are split over this many threads
    (the C loop runs without the GIL); the values do not depend on it.
    """
    fn = load(steps)
    n_a, n, n_b = len(ga), yb.shape[0], len(gb)
    pad = (-n_b) % LANES
    if pad:
        yb = np.concatenate([yb, np.zeros((n, 3, pad), np.float32)], axis=2)
        gb = np.concatenate([gb, np.zeros(pad, np.float32)])
    out = np.empty((n_a, n_b + pad), dtype=np.float32)
    ga, gb = np.ascontiguousarray(ga, dtype=np.float32), np.ascontiguousarray(gb, dtype=np.float32)
    if n > PRODUCT_MIN_BEADS:  # correlations by a BLAS product (3A, N) @ (N, 3B)
        m = np.ascontiguousarray(xa.transpose(2, 0, 1), dtype=np.float32).reshape(3 * n_a, n) @ yb.reshape(n, -1)
        m = m.reshape(3, n_a, 3 * (n_b + pad))
        call = lambda a, b: fn.from_product(np.ascontiguousarray(m[:, a:b]), b - a, n_b + pad, ga[a:b], gb,  # noqa: E731
                                            root_err, mat_err, out[a:b])
    else:
        xa, yb = np.ascontiguousarray(xa, dtype=np.float32), np.ascontiguousarray(yb, dtype=np.float32)
        call = lambda a, b: fn(xa[a:b], yb, b - a, n_b + pad, n, ga[a:b], gb, root_err, mat_err, out[a:b])  # noqa: E731
    _split_rows(call, n_a, threads)
    return out[:, :n_b]


def _split_rows(call, n_rows: int, threads: int) -> None:
    """Run ``call(start, stop)`` over row ranges covering ``n_rows``, on up to ``threads`` threads."""
    parts = max(1, min(threads, n_rows // 16))
    edges = np.linspace(0, n_rows, parts + 1).astype(int)
    if parts == 1:
        call(0, n_rows)
        return
    if _POOL.get("size", 0) < parts:  # one pool, grown when more threads are asked for
        _POOL["size"], _POOL["pool"] = parts, ThreadPoolExecutor(parts, thread_name_prefix="qcp")
    list(_POOL["pool"].map(call, edges[:-1], edges[1:]))
