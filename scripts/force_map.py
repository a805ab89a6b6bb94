"""Rule force_map: the run's CG force map (mapping.force_map), its weights figure."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p, o = snakemake.input, snakemake.params.fmap, snakemake.output  # noqa: F821
    finegrained.force_map(p["kind"], i.pdb, i.xml, i.get("fit") or None, p["ridge"], o.fmap, o.plot)
