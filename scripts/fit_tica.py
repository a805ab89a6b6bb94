"""Rule fit_tica: the run's one TICA fit on the evaluation reference."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    analysis.fit_tica(list(i.reference), i.pdb, i.xml, p.lag_ps, p.dim, o[0])
