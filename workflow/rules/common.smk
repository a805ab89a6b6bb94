# Paths, input functions and resource helpers shared by the rule files (rules live elsewhere).
# Layout under results/<run>/:
#   system/, reference/                          shared by every seed
#   seed_<s>/initial/, seed_<s>/round_000/       round 0 of seed s, shared by all its arms
#   seed_<s>/<arm>/round_<kkk>/                  later rounds of one arm (and every round's queries)
#   seed_<s>/evaluate/starts.npz                 the seed's fixed evaluation starts
#   summary/                                     tables and plots over arms and seeds
import sys
import zlib
from pathlib import Path

import dataclasses

from alcg.selection import selectors
from alcg.config import settings as S
from alcg.config.settings import Select
from alcg.stages.validate import validation_mode
from alcg.util.scheduling import drop_default_rate_limit

RES = f"results/{config['run']}"
LOGS = f"logs/{config['run']}"
BENCH = f"benchmarks/{config['run']}"
SEEDS = config["experiment"]["seeds"]
ARMS = config["experiment"]["arms"]
N_ROUNDS = config["loop"]["n_rounds"]
FF = config["forcefield"]
INIT_START = config["initial_md"]["start"]
REF_STARTS = config["reference_md"]["starts"]
FOLDED = config["evaluate"]["folded_start"] or REF_STARTS[0]
GO = FF["kind"] == "go"  # the fine-grained model: the Go model (else atomistic)
GO_NATIVE = f"{RES}/system/go_native.npz"
PLUGINS = config["experiment"]["plugins"]
FORCE_MAP = config["mapping"]["force_map"]  # constrained: no force-map file, no extra job
VALIDATION = validation_mode(config)  # train.validation, auto resolved (pool: the pool's reserved part)
FORCE_MAP_FILE = f"{RES}/system/force_map.npz"
FORCE_MAP_FIT = f"{RES}/system/force_map_fit.npz"
ENV = "../../envs/alcg.yaml"


wildcard_constraints:
    seed=r"\d+",
    arm=r"[a-z][a-z0-9_]*",
    k=r"\d{3}",
    slot=r"\d{3}",
    m=r"\d+",
    rep=r"\d+",
    start=r"[A-Za-z0-9_]+",
    round_dir=r"round_000|[a-z][a-z0-9_]*/round_\d{3}",


# ---------------------------------------------------------------- folders
def round_dir(arm, k):
    """Round folder of an arm, relative to its seed folder: round 0 is the seed's shared one."""
    return "round_000" if int(k) == 0 else f"{arm}/round_{int(k):03d}"


def model_dir(seed, arm, k):
    """Model-side folder (dataset, model, explore, evaluate) of an arm's round."""
    return f"{RES}/seed_{seed}/{round_dir(arm, k)}"


def query_dir(seed, arm, k):
    """Query-side folder (select, start, oracle) of an arm's round: never shared."""
    return f"{RES}/seed_{seed}/{arm}/round_{int(k):03d}"


def round_index(value):
    """The round number of a ``round_dir`` wildcard value."""
    return parse_round_dir(value)[1]


def parse_round_dir(value):
    """(arm or None, round) of a ``round_dir`` wildcard value."""
    if value == "round_000":
        return None, 0
    arm, k = value.rsplit("round_", 1)
    return arm.rstrip("/"), int(k)


# ---------------------------------------------------------------- arms
def select_settings(arm):
    return Select.for_arm(config["select"], arm)


def arm_selector(arm):
    """The selector class an arm runs (``select.selector``, else the arm's name)."""
    return selectors.of_arm(arm, select_settings(arm))


def select_params(wc):
    """The arm's own selection settings: another arm's override is not a rerun trigger here."""
    return dataclasses.asdict(select_settings(wc.arm))


def job(cls, section):
    """The keys of config ``section`` that settings ``cls`` holds (see alcg.config.settings.job_params)."""
    return S.job_params(cls, config[section])


def native_input(wc=None):
    """The Go model's native file, which every Go start and query needs (atomistic: none)."""
    return GO_NATIVE if GO else []


def force_map_input(wc=None):
    """The run's force-map file, an input of every projection (none for ``constrained``)."""
    return FORCE_MAP_FILE if FORCE_MAP != "constrained" else []


def oracle_force_map_input(wc=None):
    """A mean-force oracle maps its own samples: the force-map file (instantaneous labels: none,
    their projection maps them)."""
    return force_map_input() if config["oracle"]["labels"] == "mean_force" else []


def force_map_fit_input(wc=None):
    """The run the optimal map is fitted on (``residue`` needs none)."""
    return FORCE_MAP_FIT if FORCE_MAP == "optimal" else []


def force_map_params(wc=None):
    """The map's settings: the ridge only where it is used (editing it reruns no residue map)."""
    m = config["mapping"]
    return {"kind": m["force_map"], "ridge": m["ridge"] if m["force_map"] == "optimal" else None}


def force_map_md_params(wc=None):
    """The optimal map's fit run as MD-run settings (alcg.config.settings.ForceMapping.fit_md)."""
    return dataclasses.asdict(S.parse(S.ForceMapping, config["mapping"]).fit_md())


def prepare_params(wc):
    """The system settings with only this job's start: editing another start reruns nothing here."""
    return {**config["system"], "starts": {wc.start: config["system"]["starts"][wc.start]}}


#: the query slots of a round, the same for every arm (validation refuses a per-arm n_select)
SLOTS = [f"{s:03d}" for s in range(config["select"]["n_select"])]


def slots(arm):
    return SLOTS


def n_members(arm):
    return select_settings(arm).committee_members if arm_selector(arm).uses_committee else 1


def model(seed, arm, k, m=0):
    return f"{model_dir(seed, arm, k)}/model/member_{m}/model.pt"


def all_models():
    out = set()
    for s in SEEDS:
        for a in ARMS:
            for k in range(N_ROUNDS + 1):
                out.update(model(s, a, k, m) for m in range(n_members(a)))
    return sorted(out)


# ---------------------------------------------------------------- input functions
def imported(which):
    """Trajectory files to import for ``initial_md`` or ``reference_md`` (empty: generate MD)."""
    return config[which].get("trajectories") or []


def imported_runs(which):
    return [f"{RES}/imported/{which}/run_{i}.npz" for i in range(len(imported(which)))]


def initial_runs(seed):
    """Round-0 AA runs of a seed: generated per seed, or imported once for all seeds."""
    if imported("initial_md"):
        return imported_runs("initial_md")
    return [f"{RES}/seed_{seed}/initial/rep_{r}.npz" for r in range(config["initial_md"]["replicas"])]


def oracle_runs(seed, arm, k):
    return [f"{query_dir(seed, arm, k)}/oracle/slot_{s}.npz" for s in slots(arm)]


def runs_in_dataset(seed, arm, k):
    """Every AA run file the dataset of (arm, round k) can name: declared, so backmap reads no
    undeclared file."""
    runs = initial_runs(seed)
    for j in range(int(k)):
        runs += oracle_runs(seed, arm, j)
    return runs


def reference_runs():
    if imported("reference_md"):
        return imported_runs("reference_md")
    return [f"{RES}/reference/{s}_{r}.npz" for s in REF_STARTS
            for r in range(config["reference_md"]["replicas_per_start"])]


def pool_runs():
    """The equilibrium pool of the iid arm (its own runs: never a reference file)."""
    pool = config["pool_md"]
    return [f"{RES}/pool/{s}_{r}.npz" for s in pool["starts"] for r in range(pool["replicas_per_start"])]


def pool_input(wc):
    """The pool runs for an arm whose selector draws from it, else nothing."""
    return pool_runs() if arm_selector(wc.arm).uses_pool else []


def pool_validation_input(wc):
    """The pool runs when the validation frames are reserved from them (train.validation: pool)."""
    return pool_runs() if VALIDATION == "pool" else []


def heldout_source_runs():
    """Runs the held-out force set is drawn from: the equilibrium pool when there is one (Go),
    else the reference (read, like every reference file, only by evaluation)."""
    return pool_runs() or reference_runs()


def heldout_label_minutes():
    """Worst-case minutes of the held-out mean-force labels: every frame sampled for
    evaluate.heldout_label_max_ps, at 1 us per hour (the Go CLN025 model ran ~2.4 us per hour on
    one core of the Reference platform, force reads included)."""
    ev = config["evaluate"]
    frames = 3 * ev["heldout_per_stratum"]  # the Go model (the only one with mean-force labels): three Q strata
    return int(frames * ev["heldout_label_max_ps"] / 1e6 * 60) + 1


def heldout_source_groups():
    """The start of each held-out source run (its stratum for atomistic runs)."""
    pool = config["pool_md"]
    if pool_runs():
        return [s for s in pool["starts"] for _ in range(pool["replicas_per_start"])]
    return reference_run_starts()


def reference_run_starts():
    """The group of each reference run (its start, or its file for imported ones)."""
    if imported("reference_md"):
        return [Path(f).stem for f in imported("reference_md")]
    return [s for s in REF_STARTS for _ in range(config["reference_md"]["replicas_per_start"])]


def import_source(wc):
    out = {"trajectory": imported(wc.which)[int(wc.i)]}
    if config[wc.which]["topology"]:
        out["topology"] = config[wc.which]["topology"]
    return out


def priors_input(wc):
    if config["priors"]["refit"]:
        return f"{RES}/seed_{wc.seed}/{wc.round_dir}/model/priors.json"
    return f"{RES}/seed_{wc.seed}/round_000/model/priors.json"


def previous_model(wc):
    arm, k = parse_round_dir(wc.round_dir)
    if k == 0 or not config["train"]["warm_start"]:
        return []
    return [model(wc.seed, arm, k - 1, wc.m)]


def select_inputs(wc):
    k = int(wc.k)
    cls = arm_selector(wc.arm)
    out = {"dataset": f"{model_dir(wc.seed, wc.arm, k)}/dataset/dataset.npz", "plugins": PLUGINS}
    if cls.uses_cg:
        out["traj"] = f"{model_dir(wc.seed, wc.arm, k)}/explore/trajectory.h5"
        out["status"] = f"{model_dir(wc.seed, wc.arm, k)}/explore/replicas.json"
    out["members"] = [model(wc.seed, wc.arm, k, m) for m in range(n_members(wc.arm))] \
        if cls.uses_committee else []
    if cls.uses_pool:
        out.update(pool=pool_runs(), pdb=f"{RES}/system/{INIT_START}.pdb", xml=f"{RES}/system/{INIT_START}.xml")
    return out


def merge_inputs(wc):
    arm, k = parse_round_dir(wc.round_dir)
    return {"previous": f"{model_dir(wc.seed, arm, k - 1)}/dataset/dataset.npz",
            "new": f"{query_dir(wc.seed, arm, k - 1)}/oracle/projected.npz",
            "runs": oracle_runs(wc.seed, arm, k - 1)}


def summary_layout():
    """{seed: {arm: [per-round files]}} for the summary tables."""
    layout = {}
    for s in SEEDS:
        layout[s] = {}
        for a in ARMS:
            rounds = []
            for k in range(N_ROUNDS + 1):
                r = {"dataset": f"{model_dir(s, a, k)}/dataset/dataset.npz",
                     "train": f"{model_dir(s, a, k)}/model/member_0/metrics.json",
                     "evaluate": f"{model_dir(s, a, k)}/evaluate/metrics.json"}
                if k < N_ROUNDS:
                    r["select"] = f"{query_dir(s, a, k)}/select/table.json"
                    r["selected"] = f"{query_dir(s, a, k)}/select/selected.npz"
                    r["starts"] = [f"{query_dir(s, a, k)}/start/slot_{x}.npz" for x in slots(a)]
                    r["oracles"] = oracle_runs(s, a, k)
                    if arm_selector(a).uses_cg:  # how far its exploration reached (an evaluation job)
                        r["coverage"] = f"{model_dir(s, a, k)}/explore/coverage.json"
                rounds.append(r)
            layout[s][a] = rounds
    return layout


def summary_files(wc=None):
    files = []
    for arms in summary_layout().values():
        for rounds in arms.values():
            for r in rounds:
                for v in r.values():
                    files += v if isinstance(v, list) else [v]
    return sorted(set(files))


# ---------------------------------------------------------------- seeds and resources
def seed_of(*parts):
    """A reproducible per-job seed from the config seed and the job's wildcards.

    Common random numbers: within a seed, training, exploration, oracle and evaluation seeds
    depend on the round (and member, slot), never on the arm, so that paired differences
    between arms carry no SGD or Langevin noise of their own; only the selection seed is the
    arm's (``select.seed``)."""
    return (config["seed"] + zlib.crc32("/".join(map(str, parts)).encode())) % (2**31 - 1)


def gpu_torch():
    """GPUs a torch job asks for: one unless ``device: cpu`` (``auto`` may use one)."""
    return 1 if config["device"] in ("auto", "cuda") else 0


#: cores of a fine-grained MD job: OpenMM's Reference platform runs on one thread, so a job on
#: it that reserved two would leave a core idle (the Go model's reference ran serially)
MD_THREADS = 1 if FF["platform"] == "Reference" else 2


def gpu_md():
    """GPUs an OpenMM job asks for: one for a platform that may run on a GPU (``auto`` may pick
    CUDA or OpenCL), none for ``CPU`` or ``Reference``."""
    return 1 if FF["platform"] in ("auto", "CUDA", "OpenCL") else 0


def check_gpu_asked():
    """``device: cuda`` or ``forcefield.platform: CUDA|OpenCL`` on a machine that runs the jobs
    itself and cannot: one line before any job (on a cluster each job checks on its node);
    ``device: auto`` without CUDA: one line saying why the torch jobs run on the CPU. Probed in
    a child process (alcg.hardware.device.precheck): CUDA never starts in Snakemake's. Runs at onstart,
    when the executor is known (while the Snakefile is read, every run looks local), so never
    in a dry run or where a cluster runs the jobs."""
    if not workflow.local_exec:
        return
    import sys

    from alcg.hardware.device import precheck
    from alcg.util.errors import ConfigError

    try:
        notice = precheck(config["device"], FF["platform"])
    except ConfigError as exc:
        raise SystemExit(f"alcg: {exc}")
    if notice:
        print(f"alcg: {notice}", file=sys.stderr)


onstart:
    check_gpu_asked()
    # Snakemake's default job rate limit makes its scheduler poll ever more often as jobs
    # finish (alcg.util.scheduling): dropped unless the user set one
    if drop_default_rate_limit(workflow):
        print("alcg: Snakemake's default job rate limit is off (its re-evaluation timers load the scheduler)",
              file=sys.stderr)


def final_exports():
    """TorchScript exports of the final model of every arm and seed."""
    return sorted({f"{model_dir(s, a, N_ROUNDS)}/model/member_0/model_torchscript.pt" for s in SEEDS for a in ARMS})


def simulated_round(k):
    """Whether round ``k``'s models get an evaluation run (cg_evaluate.rounds: every round, or
    round 0 and the last)."""
    return config["cg_evaluate"]["rounds"] == "every" or int(k) in (0, N_ROUNDS)


def evaluation_run(wc, name):
    """An evaluation run's file for the evaluate job of ``wc``, or none in a skipped round."""
    k = round_index(wc.round_dir)
    return f"{RES}/seed_{wc.seed}/{wc.round_dir}/evaluate/{name}" if simulated_round(k) else []


# ---------------------------------------------------------------- equilibrium evaluation
#: the equilibrium runs as evaluation-run settings (cg_equilibrium without its seeds: adding a
#: seed reruns nothing that exists)
EQUILIBRIUM_RUN = dataclasses.asdict(S.parse(S.CGEquilibrium, config["cg_equilibrium"]).run())


def equilibrium_layout():
    """{seed: {arm: metrics.json}} of the final round's equilibrium evaluations."""
    return {s: {a: f"{model_dir(s, a, N_ROUNDS)}/equilibrium/metrics.json" for a in ARMS}
            for s in config["cg_equilibrium"]["seeds"]}


def equilibrium_outputs():
    """summary/equilibrium.tsv when cg_equilibrium.seeds lists any seed (else nothing)."""
    return [f"{RES}/summary/equilibrium.tsv"] if config["cg_equilibrium"]["seeds"] else []


def exploration(path):
    return path if config["cg_sim"]["keep_exploration"] else temp(path)
