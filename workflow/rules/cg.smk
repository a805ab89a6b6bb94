# CG model: priors, force-matching training, batched Langevin simulation.


rule fit_priors:
    input:
        dataset=f"{RES}/round_{{k}}/dataset/dataset.npz",
    output:
        f"{RES}/round_{{k}}/model/priors.json",
    params:
        priors=config["priors"],
        temperature_k=FF["temperature_k"],
    log:
        f"{LOGS}/round_{{k}}/fit_priors.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/fit_priors.py"


rule train:
    input:
        dataset=f"{RES}/round_{{k}}/dataset/dataset.npz",
        priors=f"{RES}/round_{{k}}/model/priors.json",
        previous=previous_model,
    output:
        model=f"{RES}/round_{{k}}/model/model.pt",
        metrics=f"{RES}/round_{{k}}/model/metrics.json",
        plot=report(f"{RES}/round_{{k}}/model/loss.png", category="Training",
                    subcategory="round {k}", caption="../report/loss.rst"),
    params:
        model=config["model"],
        train=config["train"],
        device=config["device"],
        seed=lambda wc: seed_of("train", wc.k),
    log:
        f"{LOGS}/round_{{k}}/train.log",
    benchmark:
        f"{BENCH}/round_{{k}}/train.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=1 if config["device"] in ("auto", "cuda") else 0,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/train.py"


rule cg_simulate:
    input:
        model=f"{RES}/round_{{k}}/model/model.pt",
        dataset=f"{RES}/round_{{k}}/dataset/dataset.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    output:
        traj=f"{RES}/round_{{k}}/cg_sim/trajectory.h5",
        status=f"{RES}/round_{{k}}/cg_sim/replicas.json",
    params:
        sim=config["cg_sim"],
        temperature_k=FF["temperature_k"],
        device=config["device"],
        seed=lambda wc: seed_of("cg_simulate", wc.k),
    log:
        f"{LOGS}/round_{{k}}/cg_simulate.log",
    benchmark:
        f"{BENCH}/round_{{k}}/cg_simulate.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=1 if config["device"] in ("auto", "cuda") else 0,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/cg_simulate.py"
