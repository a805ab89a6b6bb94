"""Rule control_pick: a random training frame as the start of a control-arm oracle run."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i = snakemake.input  # noqa: F821
    stages.control_pick(i.dataset, list(i.al_backmaps), i.pdb, int(snakemake.wildcards.slot),  # noqa: F821
                        snakemake.params.seed, snakemake.output[0])  # noqa: F821
