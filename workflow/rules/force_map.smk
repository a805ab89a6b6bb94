# The CG force map (mapping.force_map; docs/method/force-maps.md): one per run, shared by every
# seed, arm and round. With the default (constrained) no rule here is in the DAG: the
# projections of finegrained.smk and query.smk map with CAMapping.map_forces as before, and
# their rules and scripts stay as they were (a script's code is a rerun trigger of its jobs, so
# an existing results folder reruns nothing). With another map, the *_mapped rules below take
# over the same outputs (ruleorder) and read the force-map file.


rule force_map_md:
    input:
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        FORCE_MAP_FIT,
    params:
        md=force_map_md_params,
        ff=FF,
        seed=seed_of("force_map"),  # one run-level fit: no experiment seed's data, the same for every seed
    log:
        f"{LOGS}/force_map_md.log",
    benchmark:
        f"{BENCH}/force_map_md.tsv"
    threads: MD_THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 720 * attempt,
        gpu=gpu_md(),
    conda:
        ENV
    script:
        "../../scripts/md_run.py"


rule force_map:
    input:
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        fit=force_map_fit_input,
    output:
        fmap=FORCE_MAP_FILE,
        plot=report(f"{RES}/system/force_map.png", category="Force map", caption="../report/force_map.rst"),
    params:
        fmap=force_map_params,
    log:
        f"{LOGS}/force_map.log",
    benchmark:
        f"{BENCH}/force_map.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 20 * attempt,
    conda:
        ENV
    script:
        "../../scripts/force_map.py"


if FORCE_MAP != "constrained":

    rule project_initial_mapped:
        input:
            runs=lambda wc: initial_runs(wc.seed),
            fmap=FORCE_MAP_FILE,
            pdb=f"{RES}/system/{INIT_START}.pdb",
            xml=f"{RES}/system/{INIT_START}.xml",
        output:
            dataset=f"{RES}/seed_{{seed}}/round_000/dataset/dataset.npz",
        params:
            round=0,
            val_fraction=config["train"]["val_fraction"],
            validation=config["train"]["validation"],
        log:
            f"{LOGS}/seed_{{seed}}/round_000/project_initial.log",
        conda:
            ENV
        script:
            "../../scripts/project_mapped.py"

    rule project_oracle_mapped:
        input:
            runs=lambda wc: oracle_runs(wc.seed, wc.arm, wc.k),
            fmap=FORCE_MAP_FILE,
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
            "../../scripts/project_mapped.py"

    ruleorder: project_initial_mapped > project_initial
    ruleorder: project_oracle_mapped > project_oracle

    localrules: project_initial_mapped, project_oracle_mapped

    if config["oracle"]["labels"] == "mean_force":  # the mean-force oracle maps its samples itself

        rule oracle_mapped:
            input:
                start=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/start/slot_{{slot}}.npz",
                xml=f"{RES}/system/{INIT_START}.xml",
                fmap=FORCE_MAP_FILE,
            output:
                f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/oracle/slot_{{slot}}.npz",
            params:
                ff=FF,
                oracle=job(S.Oracle, "oracle"),
                seed=lambda wc: seed_of(wc.seed, "oracle", int(wc.k), wc.slot),  # as rule oracle's
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
                "../../scripts/oracle_mapped.py"

        ruleorder: oracle_mapped > oracle
