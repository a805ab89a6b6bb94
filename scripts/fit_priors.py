"""Rule fit_priors: Boltzmann inversion of the round's training set."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    stages.fit_priors(snakemake.input.dataset, p.priors, p.temperature_k, snakemake.output[0])  # noqa: F821
