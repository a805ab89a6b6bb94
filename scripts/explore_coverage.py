"""Rule explore_coverage: how much of the reference's plane one exploration run reached."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i = snakemake.input  # noqa: F821
    analysis.explore_coverage(list(i.reference), i.pdb, i.xml, i.traj, i.status,
                              int(snakemake.params.bins), snakemake.output[0],  # noqa: F821
                              native=i.get("native") or None, tica_path=i.get("tica") or None)
