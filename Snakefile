# alcg: active learning of coarse-grained neural-network potentials.
#   snakemake --cores N                              default config (config/config.yaml)
#   snakemake --cores N --configfile config/test.yaml   tiny CPU run
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from alcg.config import load_schema, validate as alcg_validate  # noqa: E402
from alcg.errors import ConfigError  # noqa: E402

configfile: "config/config.yaml"

try:
    alcg_validate(config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"))
except ConfigError as exc:
    raise SystemExit(f"alcg: {exc}")
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/aa.smk"
include: "workflow/rules/cg.smk"
include: "workflow/rules/loop.smk"
include: "workflow/rules/evaluate.smk"


localrules: all, select, merge, project_oracle, project_initial, fit_priors, summary, control_pick,
    control_merge, control_project, control_fit_priors


rule all:
    input:
        [model_path(k) for k in ROUNDS],
        [cg_sim_path(k) for k in ROUNDS],
        f"{RES}/summary/rounds.tsv",
