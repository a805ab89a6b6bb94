"""TorchScript export: same forces as the package model, any batch size, loads without alcg."""
from __future__ import annotations

import json
import subprocess
import sys

import mdtraj as md
import numpy as np
import pytest
import torch

from alcg.config import settings
from alcg.cg.export import METADATA_FILE, export_torchscript
from alcg.finegrained.mapping import bead_types
from alcg.cg.model import CGModel
from alcg.cg.priors import fit_priors

# a small network with a 1 nm cutoff, so that the neighbour lists differ between frames
HP = settings.defaults(settings.Model, zero_init_output=False, cutoff_nm=1.0, n_rbf=16, hidden=16, n_filters=16, n_interactions=2,
                       max_neighbors=32)


@pytest.fixture(scope="module")
def frames(cln025) -> torch.Tensor:
    """CLN025-like C-alpha frames (12, 10, 3) nm: the folded hairpin with noise, then stretched."""
    traj = md.load(str(cln025[0]))
    ca = traj.xyz[0][traj.topology.select("name CA")].astype(np.float64)
    rng = np.random.default_rng(0)
    folded = ca[None] + rng.normal(0, 0.02, (8, len(ca), 3))
    stretched = ca[None] * np.array([1.3, 1.0, 1.0]) + rng.normal(0, 0.02, (4, len(ca), 3))
    return torch.as_tensor(np.concatenate([folded, stretched]), dtype=torch.float32)


@pytest.fixture(scope="module")
def model(frames) -> CGModel:
    torch.manual_seed(0)
    prior = fit_priors(frames.numpy(), 340.0, settings.defaults(settings.Priors, dihedral_terms=2, n_bins=12))
    return CGModel(torch.as_tensor(bead_types("YYDPETGTWY")), prior, HP).float()


def test_exported_forces_match_the_model(model, frames, tmp_path):
    path = export_torchscript(model, tmp_path / "cln025.pt", example=frames[:3])
    extra = {METADATA_FILE: ""}
    exported = torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra[METADATA_FILE])["n_beads"] == 10
    for batch in (frames[3:5], frames[1:12]):  # two batch sizes, neither the traced one
        energy, forces = model.energy_and_forces(batch)
        got_energy, got_forces = exported(batch)
        assert got_energy.shape == (len(batch),) and got_forces.shape == (len(batch), 10, 3)
        torch.testing.assert_close(got_energy, energy.detach(), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(got_forces, forces, rtol=1e-5, atol=1e-3)
    with torch.no_grad():  # works in inference code too
        torch.testing.assert_close(exported(frames[:2])[1], model.energy_and_forces(frames[:2])[1],
                                   rtol=1e-5, atol=1e-3)


def test_export_loads_without_alcg(model, frames, tmp_path):
    path = export_torchscript(model, tmp_path / "m.pt")  # default example chain
    torch.save(frames[:4].clone(), tmp_path / "x.pt")
    script = (
        "import sys\n"
        "sys.modules['alcg'] = None; sys.modules['torch_geometric'] = None  # importing them fails\n"
        "import torch\n"
        f"ff = torch.jit.load({str(path)!r})\n"
        f"energy, forces = ff(torch.load({str(tmp_path / 'x.pt')!r}))\n"
        f"torch.save((energy, forces), {str(tmp_path / 'out.pt')!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path, timeout=120)
    energy, forces = torch.load(tmp_path / "out.pt")
    want_energy, want_forces = model.energy_and_forces(frames[:4])
    torch.testing.assert_close(energy, want_energy.detach(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(forces, want_forces, rtol=1e-5, atol=1e-3)
