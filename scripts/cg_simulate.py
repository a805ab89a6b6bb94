"""Rule cg_simulate: batched Langevin dynamics of the round's model."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    stages.cg_simulate(i.model, i.dataset, i.cg_pdb, p.sim, p.temperature_k, p.device, p.seed,
                       o.traj, o.status)
