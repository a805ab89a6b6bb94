# CG model: priors, force-matching training (committee members as a wildcard), exploration and
# evaluation simulations. {round_dir} is a round folder: round_000 (shared by the seed's arms) or
# <arm>/round_<kkk>.


rule fit_priors:
    input:
        dataset=f"{RES}/seed_{{seed}}/{{round_dir}}/dataset/dataset.npz",
    output:
        f"{RES}/seed_{{seed}}/{{round_dir}}/model/priors.json",
    params:
        priors=config["priors"],
        temperature_k=FF["temperature_k"],
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/fit_priors.log",
    conda:
        ENV
    script:
        "../../scripts/fit_priors.py"


rule train:
    input:
        dataset=f"{RES}/seed_{{seed}}/{{round_dir}}/dataset/dataset.npz",
        priors=priors_input,
        previous=previous_model,
    output:
        model=f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_{{m}}/model.pt",
        metrics=f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_{{m}}/metrics.json",
        plot=report(f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_{{m}}/loss.png", category="Training",
                    subcategory="seed {seed}", labels={"round": "{round_dir}", "member": "{m}"},
                    caption="../report/loss.rst"),
    params:
        model=config["model"],
        train={**config["train"], "validation": VALIDATION},  # auto resolved
        device=config["device"],
        seed=lambda wc: seed_of(wc.seed, "train", round_index(wc.round_dir), wc.m),  # common to every arm
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/train_{{m}}.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{round_dir}}/train_{{m}}.tsv"
    threads: config["torch_threads"]
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=gpu_torch(),
    conda:
        ENV
    script:
        "../../scripts/train.py"


rule explore:
    input:
        model=f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_0/model.pt",
        dataset=f"{RES}/seed_{{seed}}/{{round_dir}}/dataset/dataset.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    output:
        traj=exploration(f"{RES}/seed_{{seed}}/{{round_dir}}/explore/trajectory.h5"),
        status=exploration(f"{RES}/seed_{{seed}}/{{round_dir}}/explore/replicas.json"),
    params:
        sim=job(S.CGSim, "cg_sim"),
        temperature_k=FF["temperature_k"],
        device=config["device"],
        seed=lambda wc: seed_of(wc.seed, "explore", round_index(wc.round_dir)),  # common to every arm
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/explore.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{round_dir}}/explore.tsv"
    threads: config["torch_threads"]
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=gpu_torch(),
    conda:
        ENV
    script:
        "../../scripts/cg_simulate.py"


rule eval_starts:
    input:
        starts=expand(f"{RES}/system/{{start}}.pdb", start=REF_STARTS),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        dataset=f"{RES}/seed_{{seed}}/round_000/dataset/dataset.npz",
    output:
        f"{RES}/seed_{{seed}}/evaluate/starts.npz",
    params:
        names=REF_STARTS,
        cg_evaluate=job(S.CGEvaluate, "cg_evaluate"),
        seed=lambda wc: seed_of(wc.seed, "eval_starts"),
    log:
        f"{LOGS}/seed_{{seed}}/eval_starts.log",
    conda:
        ENV
    script:
        "../../scripts/eval_starts.py"


rule cg_evaluate:
    input:
        model=f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_0/model.pt",
        starts=f"{RES}/seed_{{seed}}/evaluate/starts.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    output:
        traj=f"{RES}/seed_{{seed}}/{{round_dir}}/evaluate/trajectory.h5",
        status=f"{RES}/seed_{{seed}}/{{round_dir}}/evaluate/replicas.json",
    params:
        sim=job(S.CGSim, "cg_sim"),
        cg_evaluate=job(S.CGEvaluate, "cg_evaluate"),
        temperature_k=FF["temperature_k"],
        device=config["device"],
        seed=lambda wc: seed_of(wc.seed, "cg_evaluate"),  # the same noise for every arm and round
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/cg_evaluate.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{round_dir}}/cg_evaluate.tsv"
    threads: config["torch_threads"]
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=gpu_torch(),
    conda:
        ENV
    script:
        "../../scripts/cg_evaluate.py"


rule equilibrium_starts:
    input:
        starts=expand(f"{RES}/system/{{start}}.pdb", start=REF_STARTS),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        dataset=f"{RES}/seed_{{seed}}/round_000/dataset/dataset.npz",  # bead masses only
    output:
        f"{RES}/seed_{{seed}}/evaluate/equilibrium_starts.npz",
    params:
        names=REF_STARTS,
        cg_evaluate=EQUILIBRIUM_RUN,
        seed=lambda wc: seed_of(wc.seed, "equilibrium_starts"),
    log:
        f"{LOGS}/seed_{{seed}}/equilibrium_starts.log",
    conda:
        ENV
    script:
        "../../scripts/eval_starts.py"


rule cg_equilibrium:
    input:
        model=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/model/member_0/model.pt",
        starts=f"{RES}/seed_{{seed}}/evaluate/equilibrium_starts.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    output:
        traj=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/trajectory.h5",
        status=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/replicas.json",
    params:
        sim=job(S.CGSim, "cg_sim"),
        cg_evaluate=EQUILIBRIUM_RUN,
        temperature_k=FF["temperature_k"],
        device=config["device"],
        seed=lambda wc: seed_of(wc.seed, "cg_equilibrium"),  # the same noise for every arm
    log:
        f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/cg_equilibrium.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/cg_equilibrium.tsv"
    threads: config["torch_threads"]
    resources:
        mem_mb=lambda wc, attempt: 6000 * attempt,
        runtime=lambda wc, attempt: 600 * attempt,
        gpu=gpu_torch(),
    conda:
        ENV
    script:
        "../../scripts/cg_evaluate.py"


rule export_model:
    input:
        f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_0/model.pt",
    output:
        f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_0/model_torchscript.pt",
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/export_model.log",
    conda:
        ENV
    script:
        "../../scripts/export_model.py"
