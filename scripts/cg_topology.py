"""Rule cg_topology: the C-alpha PDB of the CG model."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    finegrained.cg_topology(snakemake.input.pdb, snakemake.input.xml, snakemake.output[0])  # noqa: F821
