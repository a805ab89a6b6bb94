"""After a GPU `make setup`: fail in one line unless torch is a CUDA build and OpenMM has its
CUDA platform (run `make gpu-check` for the full proof that kernels run)."""
import sys

import openmm as mm
import torch

kind = sys.argv[1] if len(sys.argv) > 1 else "cuda"
if torch.version.cuda is None:
    sys.exit(f"make setup GPU={kind}: torch {torch.__version__} is a CPU build (the pip configuration served "
             "one); set TORCH_INDEX to a CUDA wheel index, or GPU=cpu")
names = [mm.Platform.getPlatform(i).getName() for i in range(mm.Platform.getNumPlatforms())]
if "CUDA" not in names:
    failures = "; ".join(f.splitlines()[0] for f in mm.Platform.getPluginLoadFailures()) or "none reported"
    sys.exit(f"make setup GPU={kind}: OpenMM {mm.__version__} has no CUDA platform (plugin load failures: {failures})")
print(f"make setup GPU={kind}: torch {torch.__version__} (CUDA {torch.version.cuda}), OpenMM {mm.__version__} "
      f"platforms {names}; now run: make gpu-check")
