"""Rule summary: rounds.tsv and the W1-per-round plot."""
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../src")  # noqa: F821  (alcg without install, e.g. --use-conda)

from alcg import stages
from alcg.logs import job_log

with job_log(snakemake.log[0]):  # noqa: F821
    i = snakemake.input  # noqa: F821
    rounds = []
    for k in range(snakemake.params.n_rounds + 1):  # noqa: F821
        prefix = f"r{k}_"
        rounds.append({key[len(prefix):]: (list(v) if key.endswith(("backmaps", "oracles")) else v)
                       for key, v in i.items() if key.startswith(prefix)})
    stages.summarize(rounds, snakemake.output.table, snakemake.output.w1)  # noqa: F821
