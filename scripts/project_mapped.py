"""Rules project_initial_mapped and project_oracle_mapped (mapping.force_map not constrained):
AA runs -> CG dataset, bead forces by the run's force-map file. (scripts/project.py serves the
constrained map unchanged: a script's code is a rerun trigger of its jobs.)"""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import finegrained  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    i, p = snakemake.input, snakemake.params  # noqa: F821
    validation = getattr(p, "validation", "tail")  # project_oracle_mapped marks no validation frames
    finegrained.project(list(i.runs), i.pdb, i.xml, p.round, snakemake.output.dataset, p.val_fraction,  # noqa: F821
                        validation, force_map_path=i.fmap)
