"""Rule train: force matching of one committee member."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import cg  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    cg.train(i.dataset, i.priors, i.previous[0] if i.previous else None, S.parse(S.Model, p.model),
             S.parse(S.Train, p.train), p.device, p.seed, o.model, o.metrics, o.plot)
