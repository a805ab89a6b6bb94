"""Rule select: the arm's selector on the round's exploration frames."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.selection import selectors  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, o, p, wc = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards  # noqa: F821
    for plugin in i.plugins:
        selectors.load_plugin(plugin)
    query.select(wc.arm, i.get("traj"), i.get("status"), i.dataset, list(i.members),
                 S.parse(S.Select, p.select), p.device, p.seed, o.selected, o.table, o.plot,
                 (list(i.pool), i.pdb, i.xml) if i.get("pool") else None)
