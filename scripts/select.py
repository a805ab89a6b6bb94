"""Rule select: RMSD selection of CG frames the training set does not cover."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    stages.select(i.traj, i.status, i.dataset, p.select, p.seed, o.selected, o.table, o.plot)
