"""Rule go_native: the Go model's native beads and contacts (forcefield.kind: go)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    o, p = snakemake.output, snakemake.params  # noqa: F821
    finegrained.go_native(S.parse(S.System, p.system), S.parse(S.ForceField, p.ff), p.start, p.seed, o.native, o.plot)
