"""Rule backmap: rebuild an all-atom structure for one selected CG frame."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    stages.backmap(i.selected, i.dataset, i.pdb, i.xml, p.ff, p.backmap,
                   int(snakemake.wildcards.slot), snakemake.output[0])  # noqa: F821
