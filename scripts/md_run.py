"""Rules reference_md and initial_md: one recorded all-atom MD replica."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    stages.md_run(snakemake.input.pdb, snakemake.input.xml, snakemake.output[0], p.md, p.ff,  # noqa: F821
                  p.seed, threads=snakemake.threads)  # noqa: F821
