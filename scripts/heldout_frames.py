"""Rule heldout_frames: the fixed held-out force set every model is scored on."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402
from alcg.config.settings import ForceField, parse  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    analysis.heldout_frames(list(i.runs), list(p.groups), i.pdb, i.xml, i.get("native") or None, p.q_threshold,
                            p.n_per_stratum, p.seed, snakemake.output[0], p.from_pool,  # noqa: F821
                            label_kind=p.labels, ff=parse(ForceField, p.forcefield), se2_target=p.se2_target,
                            max_ps=p.max_ps, threads=snakemake.threads,  # noqa: F821
                            force_map_path=i.get("fmap") or None, pool_validation=p.pool_validation)
