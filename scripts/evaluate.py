"""Rules evaluate and control_evaluate: one round's CG ensemble against the reference."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    stages.evaluate(list(i.reference), i.pdb, i.xml, i.folded, i.traj, i.status, p.evaluate, p.select,
                    p.seed, o.metrics, o.fes, o.dist)
