"""Rule fit_priors: Boltzmann inversion of the training frames."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import cg  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    cg.fit_priors(snakemake.input.dataset, S.parse(S.Priors, p.priors), p.temperature_k,  # noqa: F821
                  snakemake.output[0])  # noqa: F821
