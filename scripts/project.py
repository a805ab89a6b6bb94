"""Rules project_initial and project_oracle: AA runs -> CG dataset."""
from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    out = snakemake.output  # noqa: F821
    stages.project(list(snakemake.input.runs), snakemake.input.pdb, snakemake.input.xml,  # noqa: F821
                   snakemake.params.round, out.dataset, out.get("cg_pdb"))  # noqa: F821
