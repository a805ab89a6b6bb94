# alcg: active learning of coarse-grained neural-network potentials.
#   snakemake --cores N                                 default config (config/config.yaml)
#   snakemake --cores N --configfile config/test.yaml   tiny CPU run
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from alcg.stages.validate import load_schema, validate as alcg_validate  # noqa: E402
from alcg.util.errors import AlcgError  # noqa: E402

configfile: "config/config.yaml"

# The single validation: schema defaults applied, types, ranges, cross-key rules, arm names,
# the input structure. One line and no job on any error.
try:
    alcg_validate(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except AlcgError as exc:
    raise SystemExit(f"alcg: {exc}")


include: "workflow/rules/common.smk"
include: "workflow/rules/finegrained.smk"
include: "workflow/rules/force_map.smk"
include: "workflow/rules/cg.smk"
include: "workflow/rules/query.smk"
include: "workflow/rules/evaluate.smk"


localrules: all, cg_topology, project_initial, force_map, fit_priors, eval_starts, equilibrium_starts, export_model, select, project_oracle, merge, summary, equilibrium_summary


rule all:
    input:
        all_models(),
        final_exports(),
        f"{RES}/summary/rounds.tsv",
        equilibrium_outputs(),
        f"{RES}/summary/experiment.tsv",
