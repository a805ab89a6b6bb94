"""Rule query (Go model): every slot of a round, backmap then oracle, in one job."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
    query.query_round(i.selected, i.dataset, list(i.runs), i.pdb, i.xml, i.get("native") or None,
                      S.parse(S.ForceField, p.ff), S.parse(S.Backmap, p.backmap), S.parse(S.Oracle, p.oracle),
                      list(p.seeds), list(o.starts), list(o.runs), threads=snakemake.threads,  # noqa: F821
                      force_map_path=i.get("fmap") or None, pool_runs=list(i.get("pool") or []))
