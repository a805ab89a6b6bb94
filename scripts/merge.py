"""Rule merge: dataset(k) = dataset(k-1) + round k-1's projected oracle frames."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i = snakemake.input  # noqa: F821
    stages.merge(i.previous, i.new, list(i.runs), snakemake.params.max_failure_fraction,  # noqa: F821
                 snakemake.output[0])  # noqa: F821
