"""Rule import_md: one existing all-atom trajectory -> a run file."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p, wc = snakemake.input, snakemake.params, snakemake.wildcards  # noqa: F821
    section = S.ReferenceMD if wc.which == "reference_md" else S.InitialMD
    finegrained.import_run(i.trajectory, i.get("topology"), i.pdb, i.xml, S.parse(section, p.md), S.parse(S.ForceField, p.ff),
                  p.with_forces, snakemake.output[0], threads=snakemake.threads)  # noqa: F821
