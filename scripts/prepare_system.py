"""Rule prepare_system: build/read, protonate and minimize one start structure."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p, wc = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
    finegrained.prepare_system(S.parse(S.System, p.system), S.parse(S.ForceField, p.ff), p.start, i.get("native"), p.seed,
                      o.pdb, o.xml)
