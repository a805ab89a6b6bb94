"""Rule reference_check: is the reference an equilibrium ensemble (do its start groups agree)?"""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    analysis.reference_check(list(i.reference), list(p.reference_starts), i.pdb, i.xml, i.folded,
                             i.get("native") or None, S.parse(S.Evaluate, p.evaluate), p.q_threshold,
                             p.shared_start, o.report, o.plot)
