"""Rule train: force matching, warm-started from the previous round when configured."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    stages.train(i.dataset, i.priors, i.previous[0] if i.previous else None, p.model, p.train,
                 p.device, p.seed, o.model, o.metrics, o.plot)
