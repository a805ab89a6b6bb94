"""Rule export_model: the final model as TorchScript (energy and forces, priors included)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import cg  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    cg.export_model(snakemake.input[0], snakemake.output[0])  # noqa: F821
