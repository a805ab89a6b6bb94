"""Rule equilibrium_summary: summary/equilibrium.tsv from every equilibrium evaluation."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    analysis.equilibrium_table(p.layout, snakemake.output[0])  # noqa: F821
