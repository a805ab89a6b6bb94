"""Rule eval_starts: the seed's fixed evaluation starts."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import cg  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    cg.eval_starts(dict(zip(p.names, i.starts)), i.pdb, i.xml, i.dataset, S.parse(S.CGEvaluate, p.cg_evaluate),
                   p.seed, snakemake.output[0])  # noqa: F821
