"""Export a trained CG model (prior + network) as a standalone TorchScript force field.

The exported file needs only PyTorch (no alcg, no torch_geometric)::

    import torch
    ff = torch.jit.load("model_ts.pt")
    energy, forces = ff(x)  # x: (B, N, 3) C-alpha nm -> (B,) kJ/mol, (B, N, 3) kJ/mol/nm

How: the model's neighbour search and SchNet readout are not scriptable, and tracing a
batch would freeze the batch size (the readout's number of structures becomes a
constant). So the energy of ONE structure, ``(1, N, 3) -> (1,)``, is traced (the
neighbour mask stays dynamic: it is recorded as an indexing operation), and a small
scripted wrapper loops over the batch and takes ``-dE/dx`` with ``torch.autograd.grad``.
:func:`export_torchscript` checks the written file against the model on several batch
sizes before it returns. Python-level branches inside the model (e.g. a choice between
two exact ways to evaluate the network) are frozen as the example took them, which is
correct as long as every branch computes the same function. The export runs on the CPU in
float32.
"""
from __future__ import annotations

import contextlib
import copy
import json
import warnings
from pathlib import Path
from typing import Tuple

import torch
from torch import nn

import alcg
from alcg.util.errors import DataError
from alcg.util.fileio import atomic_path
from alcg.cg.model import CGModel

#: name of the JSON description stored inside the TorchScript file
METADATA_FILE = "alcg.json"
#: bond length (nm) and angle (rad) of the default example chain
_EXAMPLE_BOND_NM, _EXAMPLE_ANGLE_RAD = 0.38, 1.9


class ScriptedForceField(nn.Module):
    """``forward(x)``: energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm of x (B, N, 3) nm.

    Parameters
    ----------
    energy
        Traced energy of one structure: (1, N, 3) nm -> (1,) kJ/mol.
    bead_types
        (N,) bead type of each bead (kept for the user; not used by ``forward``).
    """

    def __init__(self, energy: torch.jit.ScriptModule, bead_types: torch.Tensor):
        super().__init__()
        self.energy = energy
        self.n_beads = int(len(bead_types))
        self.register_buffer("bead_types", bead_types.clone().long())

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[1] != self.n_beads or x.shape[2] != 3:
            raise ValueError("expected C-alpha coordinates of shape (batch, n_beads, 3) in nm")
        pos = x.detach().to(torch.float32)
        if pos.shape[0] == 0:
            return torch.zeros(0), torch.zeros_like(pos)
        grad_enabled = torch.is_grad_enabled()
        torch.set_grad_enabled(True)
        pos.requires_grad_(True)
        energy = torch.cat([self.energy(pos[i:i + 1]) for i in range(pos.shape[0])])
        grad = torch.autograd.grad([energy.sum()], [pos])[0]
        torch.set_grad_enabled(grad_enabled)
        assert grad is not None
        return energy.detach(), -grad


def example_chain(n_beads: int, n_frames: int = 1, noise_nm: float = 0.0, seed: int = 0) -> torch.Tensor:
    """A planar zig-zag C-alpha chain (n_frames, n_beads, 3) nm, optionally with noise."""
    half = _EXAMPLE_ANGLE_RAD / 2
    k = torch.arange(n_beads, dtype=torch.float64)
    chain = torch.stack([k * _EXAMPLE_BOND_NM * torch.sin(torch.tensor(half)),
                         (k % 2) * _EXAMPLE_BOND_NM * torch.cos(torch.tensor(half)),
                         torch.zeros(n_beads, dtype=torch.float64)], dim=1)
    gen = torch.Generator().manual_seed(seed)
    noise = noise_nm * torch.randn(n_frames, n_beads, 3, generator=gen, dtype=torch.float64)
    return (chain[None] + noise).float()


@contextlib.contextmanager
def _quiet_jit():
    """Silence torch.jit's deprecation notes and tracer warnings (the export is checked)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*torch.jit.* is deprecated", category=DeprecationWarning)
        yield


def _trace_single(model: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    # shape-only Python conditions are frozen (fine: N is fixed per model)
    with _quiet_jit():
        return torch.jit.trace(model, example[:1], check_trace=False)


def _metadata(model: CGModel) -> dict:
    return {"alcg_version": alcg.__version__, "n_beads": int(model.n_beads),
            "bead_types": [int(t) for t in model.bead_types.cpu()],
            "hparams": getattr(model, "hparams", {}),
            "input": "C-alpha coordinates (batch, n_beads, 3), nm, float32",
            "output": "(energy (batch,) kJ/mol, forces (batch, n_beads, 3) kJ/mol/nm)",
            "device": "cpu"}


def check_export(path: str | Path, model: CGModel, frames: torch.Tensor,
                 batch_sizes: tuple[int, ...] = (1, 2, 5)) -> float:
    """Largest force difference (kJ/mol/nm) between the file at ``path`` and ``model``.

    Raises :class:`DataError` when energies or forces differ beyond float32 round-off.
    """
    with _quiet_jit():
        loaded = torch.jit.load(str(path))
    worst = 0.0
    for b in batch_sizes:
        x = frames[torch.arange(b) % len(frames)]
        energy, forces = model.energy_and_forces(x)
        energy = energy.detach()
        got_e, got_f = loaded(x)
        if got_f.shape != forces.shape:
            raise DataError(f"exported model {path} returns forces of shape {tuple(got_f.shape)} "
                            f"for a batch of {b}")
        diff = float((got_f - forces).abs().max())
        e_diff = float((got_e - energy).abs().max())
        f_tol = 1e-4 * (float(forces.abs().max()) + 1.0)
        e_tol = 1e-4 * (float(energy.abs().max()) + 1.0)
        if diff > f_tol or e_diff > e_tol:
            raise DataError(f"exported model {path} does not reproduce the model at batch size {b} "
                            f"(force difference {diff:.3g}, energy difference {e_diff:.3g})")
        worst = max(worst, diff)
    return worst


def export_torchscript(model: CGModel, path: str | Path, example: torch.Tensor | None = None) -> Path:
    """Write ``model`` (prior + network) as a TorchScript force field; see the module doc.

    Parameters
    ----------
    model
        The trained model (any dtype/device; a float32 CPU copy is exported).
    path
        The ``.pt`` file to write (atomically).
    example
        Representative C-alpha frames (B, N, 3) nm, e.g. from the training set, used to
        trace and to check the export; default a zig-zag chain with 0.38 nm bonds.

    Returns
    -------
    Path
        ``path``. The file loads with ``torch.jit.load(path)``; its ``forward(x)`` takes
        x (B, N, 3) nm and returns energy (B,) kJ/mol and forces (B, N, 3) kJ/mol/nm. A
        JSON description (bead types, units, hyperparameters) is stored as the extra file
        :data:`METADATA_FILE`.
    """
    path = Path(path)
    cpu = copy.deepcopy(model).float().cpu().eval()
    for p in cpu.parameters():
        p.requires_grad_(False)
    n = int(cpu.n_beads)
    if example is None:
        example = example_chain(n, 3, noise_nm=0.02)
    example = torch.as_tensor(example).detach().float().cpu()
    if example.dim() != 3 or example.shape[1:] != (n, 3):
        raise DataError(f"export example has shape {tuple(example.shape)}; the model needs (B, {n}, 3)")
    with _quiet_jit():
        wrapper = torch.jit.script(ScriptedForceField(_trace_single(cpu, example), cpu.bead_types))
        with atomic_path(path) as tmp:
            torch.jit.save(wrapper, str(tmp), _extra_files={METADATA_FILE: json.dumps(_metadata(cpu))})
    try:
        check_export(path, cpu, example)
    except Exception:
        path.unlink(missing_ok=True)
        raise
    return path
