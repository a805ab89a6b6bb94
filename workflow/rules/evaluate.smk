# Evaluation of every arm, seed and round against the reference, and the summaries.


rule evaluate:
    input:
        reference=reference_runs(),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
        traj=f"{RES}/seed_{{seed}}/{{rd}}/evaluate/trajectory.h5",
        status=f"{RES}/seed_{{seed}}/{{rd}}/evaluate/replicas.json",
    output:
        metrics=f"{RES}/seed_{{seed}}/{{rd}}/evaluate/metrics.json",
        fes=report(f"{RES}/seed_{{seed}}/{{rd}}/evaluate/tica_fes.png", category="TICA free energy",
                   subcategory="seed {seed}", labels={"round": "{rd}"}, caption="../report/fes.rst"),
        dist=report(f"{RES}/seed_{{seed}}/{{rd}}/evaluate/distributions.png", category="Distributions",
                    subcategory="seed {seed}", labels={"round": "{rd}"}, caption="../report/distributions.rst"),
    params:
        reference_starts=reference_run_starts(),
        evaluate=config["evaluate"],
        select=config["select"],
        seed=lambda wc: seed_of(wc.seed, "evaluate"),
    log:
        f"{LOGS}/seed_{{seed}}/{{rd}}/evaluate.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{rd}}/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/evaluate.py"


rule summary:
    input:
        summary_files,
    output:
        rounds=report(f"{RES}/summary/rounds.tsv", category="Summary", caption="../report/rounds.rst"),
        experiment=report(f"{RES}/summary/experiment.tsv", category="Summary",
                          caption="../report/experiment_table.rst"),
        plot=report(f"{RES}/summary/experiment.png", category="Summary", caption="../report/experiment.rst"),
    params:
        layout=summary_layout(),
        evaluate=config["evaluate"],
    log:
        f"{LOGS}/summary.log",
    conda:
        ENV
    script:
        "../../scripts/summary.py"
