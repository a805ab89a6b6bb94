# Evaluation of every arm, seed and round against the reference, and the summaries.
from alcg.stages.validate import heldout_label_kind

HELDOUT_LABELS = heldout_label_kind(config)  # evaluate.heldout_labels, auto resolved


rule heldout_frames:
    input:
        runs=heldout_source_runs(),
        fmap=force_map_input,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        native=native_input,
    output:
        f"{RES}/evaluate/heldout.npz",
    params:
        groups=heldout_source_groups(),
        from_pool=bool(pool_runs()),
        pool_validation=VALIDATION == "pool",
        q_threshold=FF["go"]["q_threshold"] if GO else None,
        n_per_stratum=config["evaluate"]["heldout_per_stratum"],
        seed=seed_of("heldout"),
        labels=HELDOUT_LABELS,
        forcefield=FF,
        se2_target=config["evaluate"]["heldout_label_se2"],
        max_ps=config["evaluate"]["heldout_label_max_ps"],
    log:
        f"{LOGS}/heldout_frames.log",
    # mean-force labels of the Go model: ~0.3 s per frame on one core (Reference platform, ~150 ps
    # each at the default SE^2 target; at most heldout_label_max_ps)
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: (30 + (heldout_label_minutes() if HELDOUT_LABELS == "mean_force" else 0))
        * attempt,
    conda:
        ENV
    script:
        "../../scripts/heldout_frames.py"


# The run's one TICA fit on the evaluation reference; every evaluate job reads it.
rule fit_tica:
    input:
        reference=reference_runs(),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        f"{RES}/evaluate/tica.npz",
    params:
        lag_ps=config["evaluate"]["tica_lag_ps"],
        dim=config["evaluate"]["tica_dim"],
    log:
        f"{LOGS}/fit_tica.log",
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/fit_tica.py"


rule evaluate:
    input:
        reference=reference_runs(),
        model=f"{RES}/seed_{{seed}}/{{round_dir}}/model/member_0/model.pt",
        heldout=f"{RES}/evaluate/heldout.npz",
        tica=f"{RES}/evaluate/tica.npz",
        native=native_input,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
        traj=lambda wc: evaluation_run(wc, "trajectory.h5"),  # none in a round cg_evaluate.rounds skips
        status=lambda wc: evaluation_run(wc, "replicas.json"),
    output:
        metrics=f"{RES}/seed_{{seed}}/{{round_dir}}/evaluate/metrics.json",
        fes=report(f"{RES}/seed_{{seed}}/{{round_dir}}/evaluate/tica_fes.png", category="TICA free energy",
                   subcategory="seed {seed}", labels={"round": "{round_dir}"}, caption="../report/fes.rst"),
        dist=report(f"{RES}/seed_{{seed}}/{{round_dir}}/evaluate/distributions.png", category="Distributions",
                    subcategory="seed {seed}", labels={"round": "{round_dir}"}, caption="../report/distributions.rst"),
    params:
        reference_starts=reference_run_starts(),
        evaluate=config["evaluate"],
        physical=job(S.PhysicalChecks, "select"),
        seed=lambda wc: seed_of(wc.seed, "evaluate"),
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/evaluate.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{round_dir}}/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/evaluate.py"


rule equilibrium:
    input:
        reference=reference_runs(),
        traj=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/trajectory.h5",
        status=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/replicas.json",
        tica=f"{RES}/evaluate/tica.npz",
        native=native_input,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
    output:
        metrics=f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/metrics.json",
        plot=report(f"{RES}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium/free_energy.png",
                    category="Equilibrium", subcategory="seed {seed}", labels={"arm": "{arm}", "round": "{k}"},
                    caption="../report/equilibrium.rst"),
    params:
        reference_starts=reference_run_starts(),
        evaluate=config["evaluate"],
        physical=job(S.PhysicalChecks, "select"),
        frame_ps=config["cg_equilibrium"]["save_interval"] * config["cg_sim"]["dt_ps"],
        q_threshold=FF["go"]["q_threshold"] if GO else None,
        seed=lambda wc: seed_of(wc.seed, "equilibrium"),
    log:
        f"{LOGS}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{arm}}/round_{{k}}/equilibrium.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/equilibrium.py"


rule equilibrium_summary:
    input:
        lambda wc: [p for arms in equilibrium_layout().values() for p in arms.values()],
    output:
        report(f"{RES}/summary/equilibrium.tsv", category="Summary", caption="../report/equilibrium_table.rst"),
    params:
        layout=equilibrium_layout(),
    log:
        f"{LOGS}/equilibrium_summary.log",
    conda:
        ENV
    script:
        "../../scripts/equilibrium_summary.py"


rule explore_coverage:
    input:
        reference=reference_runs(),
        traj=f"{RES}/seed_{{seed}}/{{round_dir}}/explore/trajectory.h5",
        status=f"{RES}/seed_{{seed}}/{{round_dir}}/explore/replicas.json",
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        native=native_input,
        tica=[] if GO else f"{RES}/evaluate/tica.npz",  # the Go model's plane is (Q, Rg)
    output:
        f"{RES}/seed_{{seed}}/{{round_dir}}/explore/coverage.json",
    params:
        bins=config["evaluate"]["divergence_bins"],
    log:
        f"{LOGS}/seed_{{seed}}/{{round_dir}}/explore_coverage.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/{{round_dir}}/explore_coverage.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/explore_coverage.py"


rule reference_check:
    input:
        reference=reference_runs(),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
        folded=f"{RES}/system/{FOLDED}.pdb",
        native=native_input,
    output:
        report=f"{RES}/reference/convergence.json",
        plot=report(f"{RES}/reference/convergence.png", category="Reference",
                    caption="../report/convergence.rst"),
    params:
        reference_starts=reference_run_starts(),
        evaluate=config["evaluate"],
        q_threshold=FF["go"]["q_threshold"] if GO else None,
        shared_start=bool(config["system"]["pdb"]),
    log:
        f"{LOGS}/reference_check.log",
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    conda:
        ENV
    script:
        "../../scripts/reference_check.py"


rule summary:
    input:
        summary_files,
        reference_check=f"{RES}/reference/convergence.json",
    output:
        rounds=report(f"{RES}/summary/rounds.tsv", category="Summary", caption="../report/rounds.rst"),
        experiment=report(f"{RES}/summary/experiment.tsv", category="Summary",
                          caption="../report/experiment_table.rst"),
        primary=report(f"{RES}/summary/primary.tsv", category="Summary", caption="../report/primary.rst"),
        plot=report(f"{RES}/summary/experiment.png", category="Summary", caption="../report/experiment.rst"),
    params:
        layout=summary_layout(),
        evaluate=config["evaluate"],
        analysis=config["analysis"],
    log:
        f"{LOGS}/summary.log",
    conda:
        ENV
    script:
        "../../scripts/summary.py"
