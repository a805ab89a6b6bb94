"""Bead-chain internal coordinates in torch (differentiable) and numpy."""
from __future__ import annotations

import torch


def bonds(x: torch.Tensor) -> torch.Tensor:
    """Distances (nm) between consecutive beads: (..., N, 3) -> (..., N-1)."""
    return (x[..., 1:, :] - x[..., :-1, :]).norm(dim=-1)


def angles(x: torch.Tensor) -> torch.Tensor:
    """Bond angles (rad) at beads 1..N-2: (..., N, 3) -> (..., N-2)."""
    a = x[..., :-2, :] - x[..., 1:-1, :]
    b = x[..., 2:, :] - x[..., 1:-1, :]
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))
    return torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))


def dihedrals(x: torch.Tensor) -> torch.Tensor:
    """Pseudo-dihedrals (rad, in [-pi, pi]) of beads i..i+3: (..., N, 3) -> (..., N-3)."""
    b0 = x[..., 1:-2, :] - x[..., :-3, :]
    b1 = x[..., 2:-1, :] - x[..., 1:-2, :]
    b2 = x[..., 3:, :] - x[..., 2:-1, :]
    n0 = torch.cross(b0, b1, dim=-1)
    n1 = torch.cross(b1, b2, dim=-1)
    m = torch.cross(n0, b1 / b1.norm(dim=-1, keepdim=True), dim=-1)
    return torch.atan2((m * n1).sum(-1), (n0 * n1).sum(-1))


def nonbonded_pairs(n_beads: int, min_separation: int = 3) -> torch.Tensor:
    """Index pairs (2, P) of beads with |i - j| >= ``min_separation``."""
    i, j = torch.triu_indices(n_beads, n_beads, offset=min_separation)
    return torch.stack([i, j])


def pair_distances(x: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Distances (nm) of the bead ``pairs``: (..., N, 3) -> (..., P)."""
    return (x[..., pairs[1], :] - x[..., pairs[0], :]).norm(dim=-1)
