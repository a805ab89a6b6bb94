"""Rule oracle: all-atom MD query from one backmapped structure."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    stages.oracle(snakemake.input[0], p.ff, p.oracle, p.seed, snakemake.output[0],  # noqa: F821
                  threads=snakemake.threads)  # noqa: F821
