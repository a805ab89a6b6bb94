"""Rule oracle: all-atom MD from one slot's start structure."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    p = snakemake.params  # noqa: F821
    query.oracle(snakemake.input.start, snakemake.input.xml, S.parse(S.ForceField, p.ff), S.parse(S.Oracle, p.oracle), p.seed,  # noqa: F821
                 snakemake.output[0], threads=snakemake.threads,  # noqa: F821
                 force_map_path=snakemake.input.get("fmap") or None)  # noqa: F821
