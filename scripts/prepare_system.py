"""Rule prepare_system: build/read, protonate and minimize one starting structure."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.logs import job_log
from alcg.prepare import prepare_system

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    prepare_system(p.system, p.ff, p.start, snakemake.output.pdb, snakemake.output.xml, p.seed)  # noqa: F821
