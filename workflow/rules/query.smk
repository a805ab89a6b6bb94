# Queries, shared by every arm: select (the arm's selector) -> start structure per slot
# (backmap, or a training frame as is) -> oracle per slot -> project -> merge into the next
# round. Atomistic: one backmap and one oracle job per slot, which keeps the queries parallel.
# Go model: one query job per round (its slots take seconds each; thousands of tiny jobs would
# load the scheduler more than the queries load the cores), writing the same files with the
# same per-slot seeds. Either way the DAG is static.


rule select:
    input:
        unpack(select_inputs),
    output:
        selected=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/select/selected.npz",
        table=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/select/table.json",
        plot=report(f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/select/scores.png", category="Selection",
                    subcategory="seed {seed}", labels={"arm": "{arm}", "round": "{k}"},
                    caption="../report/select.rst"),
    params:
        select=select_params,
        device=config["device"],
        seed=lambda wc: seed_of(wc.seed, "select", int(wc.k), select_settings(wc.arm).seed),  # the arm's own
    log:
        f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/select.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/select.tsv"
    conda:
        ENV
    script:
        "../../scripts/select.py"


if GO:

    rule query:
        input:
            selected=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/select/selected.npz",
            dataset=lambda wc: f"{model_dir(wc.seed, wc.arm, wc.k)}/dataset/dataset.npz",
            runs=lambda wc: runs_in_dataset(wc.seed, wc.arm, wc.k),
            pdb=f"{RES}/system/{INIT_START}.pdb",
            xml=f"{RES}/system/{INIT_START}.xml",
            native=native_input,
            pool=pool_input,
            fmap=oracle_force_map_input,
        output:
            starts=[f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/start/slot_{s}.npz" for s in SLOTS],
            runs=[f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/slot_{s}.npz" for s in SLOTS],
        params:
            ff=FF,
            backmap=config["backmap"],
            oracle=job(S.Oracle, "oracle"),
            seeds=lambda wc: [seed_of(wc.seed, "oracle", int(wc.k), s) for s in SLOTS],  # as rule oracle's
        log:
            f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/query.log",
        benchmark:
            f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/query.tsv"
        threads: MD_THREADS
        resources:
            mem_mb=lambda wc, attempt: 2000 * attempt,
            runtime=lambda wc, attempt: (20 + 5 * len(SLOTS)) * attempt,
            gpu=gpu_md(),
        conda:
            ENV
        script:
            "../../scripts/query.py"

else:

    rule backmap:
        input:
            selected=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/select/selected.npz",
            dataset=lambda wc: f"{model_dir(wc.seed, wc.arm, wc.k)}/dataset/dataset.npz",
            runs=lambda wc: runs_in_dataset(wc.seed, wc.arm, wc.k),
            pdb=f"{RES}/system/{INIT_START}.pdb",
            xml=f"{RES}/system/{INIT_START}.xml",
            native=native_input,
            pool=pool_input,
        output:
            f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/start/slot_{{slot}}.npz",
        params:
            ff=FF,
            backmap=config["backmap"],
        log:
            f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/backmap/slot_{{slot}}.log",
        benchmark:
            f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/backmap/slot_{{slot}}.tsv"
        threads: 1
        resources:
            mem_mb=lambda wc, attempt: 2000 * attempt,
            runtime=lambda wc, attempt: 20 * attempt,
            gpu=gpu_md(),  # OpenMM on forcefield.platform: auto may pick a GPU
        conda:
            ENV
        script:
            "../../scripts/backmap.py"


    rule oracle:
        input:
            start=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/start/slot_{{slot}}.npz",
            xml=f"{RES}/system/{INIT_START}.xml",  # the Go model's System (atomistic: rebuilt from the start)
            fmap=oracle_force_map_input,
        output:
            f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/slot_{{slot}}.npz",
        params:
            ff=FF,
            oracle=job(S.Oracle, "oracle"),
            seed=lambda wc: seed_of(wc.seed, "oracle", int(wc.k), wc.slot),  # common to every arm
        log:
            f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/slot_{{slot}}.log",
        benchmark:
            f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/slot_{{slot}}.tsv"
        threads: MD_THREADS
        resources:
            mem_mb=lambda wc, attempt: 4000 * attempt,
            runtime=lambda wc, attempt: 240 * attempt,
            gpu=gpu_md(),
        conda:
            ENV
        script:
            "../../scripts/oracle.py"



rule project_oracle:
    input:
        runs=lambda wc: oracle_runs(wc.seed, wc.arm, wc.k),
        fmap=force_map_input,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        dataset=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/projected.npz",
    params:
        round=lambda wc: int(wc.k),
        val_fraction=None,
    log:
        f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/project_oracle.log",
    conda:
        ENV
    script:
        "../../scripts/project.py"


rule merge:
    input:
        unpack(merge_inputs),
    output:
        f"{RES}/seed_{{seed}}/{{round_dir,[a-z][a-z0-9_]*/round_(?!000)\\d{{3}}}}/dataset/dataset.npz",
    params:
        max_failure_fraction=config["oracle"]["max_failure_fraction"],
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/merge.log",
    conda:
        ENV
    script:
        "../../scripts/merge.py"
