"""Rule project_initial and project_oracle: AA runs -> CG dataset."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    validation = getattr(p, "validation", "tail")  # project_oracle marks no validation frames
    finegrained.project(list(i.runs), i.pdb, i.xml, p.round, snakemake.output.dataset, p.val_fraction,  # noqa: F821
                        validation, force_map_path=i.get("fmap") or None, pool_runs=list(i.get("pool") or []))
