# Evaluation per round, the equal-oracle-budget control arm, and the summary table/plots.
CONTROL = config.get("control", {}).get("enabled", False)
CTRL = f"{RES}/control"
FOLDED = config["evaluate"].get("folded_start", config["reference_md"]["starts"][0])
REFERENCE_RUNS = expand(f"{RES}/reference/{{start}}_{{rep}}.npz", start=config["reference_md"]["starts"],
                        rep=range(config["reference_md"]["replicas_per_start"]))


rule evaluate:
    input:
        reference=REFERENCE_RUNS,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
        traj=f"{RES}/round_{{k}}/cg_sim/trajectory.h5",
        status=f"{RES}/round_{{k}}/cg_sim/replicas.json",
    output:
        metrics=f"{RES}/round_{{k}}/evaluate/metrics.json",
        fes=report(f"{RES}/round_{{k}}/evaluate/tica_fes.png", category="TICA free energy",
                   subcategory="round {k}", caption="../report/fes.rst"),
        dist=report(f"{RES}/round_{{k}}/evaluate/distributions.png", category="Distributions",
                    subcategory="round {k}", caption="../report/distributions.rst"),
    params:
        evaluate=config["evaluate"],
        select=config["select"],
        seed=config["seed"],
    log:
        f"{LOGS}/round_{{k}}/evaluate.log",
    benchmark:
        f"{BENCH}/round_{{k}}/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/evaluate.py"


# ---- control arm: same round-0 model, same number of oracle runs, started from random frames
def _ctrl(k):
    """Control-arm round folder; round 0 is shared with the active-learning arm."""
    return rnd(k) if int(k) == 0 else f"{CTRL}/round_{int(k):03d}"


rule control_pick:
    input:
        dataset=lambda wc: f"{_ctrl(wc.k)}/dataset/dataset.npz",
        al_backmaps=expand(f"{RES}/round_{{{{k}}}}/backmap/slot_{{slot}}.npz",
                           slot=[f"{s:03d}" for s in range(N_SLOTS)]),
        pdb=f"{RES}/system/{INIT_START}.pdb",
    output:
        f"{CTRL}/round_{{k}}/pick/slot_{{slot}}.npz",
    params:
        seed=lambda wc: seed_of("control_pick", wc.k, wc.slot),
    log:
        f"{LOGS}/control/round_{{k}}/pick/slot_{{slot}}.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/control_pick.py"


use rule oracle as control_oracle with:
    input:
        f"{CTRL}/round_{{k}}/pick/slot_{{slot}}.npz",
    output:
        f"{CTRL}/round_{{k}}/oracle/slot_{{slot}}.npz",
    params:
        ff=FF,
        oracle=config["oracle"],
        seed=lambda wc: seed_of("control_oracle", wc.k, wc.slot),
    log:
        f"{LOGS}/control/round_{{k}}/oracle/slot_{{slot}}.log",
    benchmark:
        f"{BENCH}/control/round_{{k}}/oracle/slot_{{slot}}.tsv"


use rule project_oracle as control_project with:
    input:
        runs=expand(f"{CTRL}/round_{{{{k}}}}/oracle/slot_{{slot}}.npz",
                    slot=[f"{s:03d}" for s in range(N_SLOTS)]),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        dataset=f"{CTRL}/round_{{k}}/oracle/projected.npz",
    log:
        f"{LOGS}/control/round_{{k}}/project_oracle.log",


def _control_previous(wildcards):
    k = int(wildcards.k)
    return {"previous": f"{_ctrl(k - 1)}/dataset/dataset.npz",
            "new": f"{CTRL}/round_{k - 1:03d}/oracle/projected.npz",
            "runs": [f"{CTRL}/round_{k - 1:03d}/oracle/slot_{s:03d}.npz" for s in range(N_SLOTS)]}


use rule merge as control_merge with:
    input:
        unpack(_control_previous),
    output:
        f"{CTRL}/round_{{k}}/dataset/dataset.npz",
    log:
        f"{LOGS}/control/round_{{k}}/merge.log",


use rule fit_priors as control_fit_priors with:
    input:
        dataset=f"{CTRL}/round_{{k}}/dataset/dataset.npz",
    output:
        f"{CTRL}/round_{{k}}/model/priors.json",
    log:
        f"{LOGS}/control/round_{{k}}/fit_priors.log",


def _control_previous_model(wildcards):
    k = int(wildcards.k)
    if not config["train"].get("warm_start", True):
        return []
    return [f"{_ctrl(k - 1)}/model/model.pt"]


use rule train as control_train with:
    input:
        dataset=f"{CTRL}/round_{{k}}/dataset/dataset.npz",
        priors=f"{CTRL}/round_{{k}}/model/priors.json",
        previous=_control_previous_model,
    output:
        model=f"{CTRL}/round_{{k}}/model/model.pt",
        metrics=f"{CTRL}/round_{{k}}/model/metrics.json",
        plot=f"{CTRL}/round_{{k}}/model/loss.png",
    log:
        f"{LOGS}/control/round_{{k}}/train.log",
    benchmark:
        f"{BENCH}/control/round_{{k}}/train.tsv"


use rule cg_simulate as control_cg_simulate with:
    input:
        model=f"{CTRL}/round_{{k}}/model/model.pt",
        dataset=f"{CTRL}/round_{{k}}/dataset/dataset.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    output:
        traj=f"{CTRL}/round_{{k}}/cg_sim/trajectory.h5",
        status=f"{CTRL}/round_{{k}}/cg_sim/replicas.json",
    log:
        f"{LOGS}/control/round_{{k}}/cg_simulate.log",
    benchmark:
        f"{BENCH}/control/round_{{k}}/cg_simulate.tsv"


use rule evaluate as control_evaluate with:
    input:
        reference=REFERENCE_RUNS,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
        traj=f"{CTRL}/round_{{k}}/cg_sim/trajectory.h5",
        status=f"{CTRL}/round_{{k}}/cg_sim/replicas.json",
    output:
        metrics=f"{CTRL}/round_{{k}}/evaluate/metrics.json",
        fes=f"{CTRL}/round_{{k}}/evaluate/tica_fes.png",
        dist=f"{CTRL}/round_{{k}}/evaluate/distributions.png",
    log:
        f"{LOGS}/control/round_{{k}}/evaluate.log",
    benchmark:
        f"{BENCH}/control/round_{{k}}/evaluate.tsv"


def _summary_inputs(wildcards=None):
    files = {}
    for k in ROUNDS:
        r = rnd(k)
        files[f"r{k}_dataset"] = f"{r}/dataset/dataset.npz"
        files[f"r{k}_metrics"] = f"{r}/model/metrics.json"
        files[f"r{k}_evaluate"] = f"{r}/evaluate/metrics.json"
        if k < N_ROUNDS:
            files[f"r{k}_select"] = f"{r}/select/table.json"
            files[f"r{k}_backmaps"] = [f"{r}/backmap/slot_{s:03d}.npz" for s in range(N_SLOTS)]
            files[f"r{k}_oracles"] = [f"{r}/oracle/slot_{s:03d}.npz" for s in range(N_SLOTS)]
        if CONTROL:
            c = _ctrl(k)
            files[f"r{k}_control_dataset"] = f"{c}/dataset/dataset.npz"
            files[f"r{k}_control_metrics"] = f"{c}/model/metrics.json"
            files[f"r{k}_control_evaluate"] = f"{c}/evaluate/metrics.json"
            if k < N_ROUNDS:
                files[f"r{k}_control_oracles"] = [f"{CTRL}/round_{k:03d}/oracle/slot_{s:03d}.npz"
                                                  for s in range(N_SLOTS)]
    return files


rule summary:
    input:
        unpack(_summary_inputs),
    output:
        table=report(f"{RES}/summary/rounds.tsv", category="Summary", caption="../report/rounds.rst"),
        w1=report(f"{RES}/summary/tica_w1.png", category="Summary", caption="../report/w1.rst"),
    params:
        n_rounds=N_ROUNDS,
    log:
        f"{LOGS}/summary.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/summary.py"
