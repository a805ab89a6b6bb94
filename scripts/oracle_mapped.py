"""Rule oracle_mapped (oracle.labels: mean_force and mapping.force_map not
constrained): one query whose bead samples the run's force map labels. (scripts/oracle.py serves
every other case unchanged: a script's code is a rerun trigger of its jobs.)"""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import query  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    query.oracle(i.start, i.xml, S.parse(S.ForceField, p.ff), S.parse(S.Oracle, p.oracle), p.seed,
                 snakemake.output[0], threads=snakemake.threads, force_map_path=i.fmap)  # noqa: F821
