"""Rule backmap: the start structure of one query slot."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    query.backmap(i.selected, i.dataset, list(i.runs), i.pdb, i.xml, i.get("native") or None,
                  S.parse(S.ForceField, p.ff),
                  S.parse(S.Backmap, p.backmap), int(snakemake.wildcards.slot), snakemake.output[0],  # noqa: F821
                  list(i.get("pool") or []))
