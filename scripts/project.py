"""Rules project_initial and project_oracle: AA runs -> CG dataset."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    out = snakemake.output  # noqa: F821
    stages.project(list(snakemake.input.runs), snakemake.input.pdb, snakemake.input.xml,  # noqa: F821
                   snakemake.params.round, out.dataset, out.get("cg_pdb"))  # noqa: F821
