"""Rule evaluate: one evaluation simulation against the reference."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    analysis.evaluate(list(i.reference), list(p.reference_starts), i.pdb, i.xml, i.folded, i.tica,
                      i.get("traj") or None, i.get("status") or None,
                      S.parse(S.Evaluate, p.evaluate), S.parse(S.PhysicalChecks, p.physical), p.seed, o.metrics,
                      o.fes, o.dist, i.model, i.heldout, i.get("native") or None)
