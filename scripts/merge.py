"""Rule merge: dataset(k+1) = dataset(k) + projected oracle frames."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i = snakemake.input  # noqa: F821
    query.merge(i.previous, i.new, list(i.runs), snakemake.params.max_failure_fraction,  # noqa: F821
                snakemake.output[0])  # noqa: F821
