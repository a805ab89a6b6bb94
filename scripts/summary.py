"""Rule summary: rounds.tsv, experiment.tsv and experiment.png."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg.config import settings as S  # noqa: E402
from alcg.util.logs import job_log  # noqa: E402
from alcg.stages import analysis  # noqa: E402

with job_log(snakemake.log[0]):  # noqa: F821
    o, p = snakemake.output, snakemake.params  # noqa: F821
    analysis.summarize(p.layout, S.parse(S.Evaluate, p.evaluate), S.parse(S.Analysis, p.analysis),
                       snakemake.input.reference_check, o.rounds, o.experiment, o.primary, o.plot)  # noqa: F821
