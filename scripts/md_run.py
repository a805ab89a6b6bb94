"""Rules reference_md, pool_md and initial_md: one recorded fine-grained MD replica (the
reference and the pool at the reference friction)."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    finegrained.md_run(i.pdb, i.xml, snakemake.output[0], S.parse(S.MDRun, p.md), snakemake.rule in ("reference_md", "pool_md"),  # noqa: F821
              S.parse(S.ForceField, p.ff), p.seed, threads=snakemake.threads)  # noqa: F821
