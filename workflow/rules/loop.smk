# Active learning: RMSD selection, backmapping, oracle queries, projection and merge.
# Oracle jobs are one per selection slot (select.n_select per round), so the DAG is static
# and the queries run in parallel; a slot without a selected frame records "skipped".


rule select:
    input:
        traj=f"{RES}/round_{{k}}/cg_sim/trajectory.h5",
        status=f"{RES}/round_{{k}}/cg_sim/replicas.json",
        dataset=f"{RES}/round_{{k}}/dataset/dataset.npz",
    output:
        selected=f"{RES}/round_{{k}}/select/selected.npz",
        table=f"{RES}/round_{{k}}/select/table.json",
        plot=report(f"{RES}/round_{{k}}/select/rmsd_hist.png", category="Selection",
                    subcategory="round {k}", caption="../report/select.rst"),
    params:
        select=config["select"],
        seed=lambda wc: seed_of("select", wc.k),
    log:
        f"{LOGS}/round_{{k}}/select.log",
    benchmark:
        f"{BENCH}/round_{{k}}/select.tsv"
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/select.py"


rule backmap:
    input:
        selected=f"{RES}/round_{{k}}/select/selected.npz",
        dataset=f"{RES}/round_{{k}}/dataset/dataset.npz",
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        f"{RES}/round_{{k}}/backmap/slot_{{slot}}.npz",
    params:
        ff=FF,
        backmap=config["backmap"],
    log:
        f"{LOGS}/round_{{k}}/backmap/slot_{{slot}}.log",
    benchmark:
        f"{BENCH}/round_{{k}}/backmap/slot_{{slot}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 20 * attempt,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/backmap.py"


rule oracle:
    input:
        f"{RES}/round_{{k}}/backmap/slot_{{slot}}.npz",
    output:
        f"{RES}/round_{{k}}/oracle/slot_{{slot}}.npz",
    params:
        ff=FF,
        oracle=config["oracle"],
        seed=lambda wc: seed_of("oracle", wc.k, wc.slot),
    log:
        f"{LOGS}/round_{{k}}/oracle/slot_{{slot}}.log",
    benchmark:
        f"{BENCH}/round_{{k}}/oracle/slot_{{slot}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 240 * attempt,
        gpu=1 if FF.get("platform", "auto") in ("auto", "CUDA") else 0,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/oracle.py"


rule project_oracle:
    input:
        runs=expand(f"{RES}/round_{{{{k}}}}/oracle/slot_{{slot}}.npz",
                    slot=[f"{s:03d}" for s in range(N_SLOTS)]),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        dataset=f"{RES}/round_{{k}}/oracle/projected.npz",
    params:
        round=lambda wc: int(wc.k),
    log:
        f"{LOGS}/round_{{k}}/project_oracle.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/project.py"


def _previous_round(wildcards):
    k = int(wildcards.k)
    prev = rnd(k - 1)
    return {
        "previous": f"{prev}/dataset/dataset.npz",
        "new": f"{prev}/oracle/projected.npz",
        "runs": [f"{prev}/oracle/slot_{s:03d}.npz" for s in range(N_SLOTS)],
    }


rule merge:
    input:
        unpack(_previous_round),
    output:
        f"{RES}/round_{{k,(?!000)\\d{{3}}}}/dataset/dataset.npz",
    params:
        max_failure_fraction=config["oracle"].get("max_failure_fraction", 0.5),
    log:
        f"{LOGS}/round_{{k}}/merge.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/merge.py"

