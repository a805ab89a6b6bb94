"""Rule explore: the CG simulation that feeds selection."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import cg  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    cg.explore(i.model, i.dataset, i.cg_pdb, S.parse(S.CGSim, p.sim), p.temperature_k, p.device, p.seed,
               o.traj, o.status)
