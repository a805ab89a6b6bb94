# All-atom side: system preparation, reference and initial MD, AA -> CG projection.


rule go_native:
    input:
        pdb=config["system"]["pdb"] or [],
    output:
        native=GO_NATIVE,
        plot=report(f"{RES}/system/contact_map.png", category="Go model", caption="../report/contact_map.rst"),
    params:
        system=lambda wc: {**config["system"], "starts": {FOLDED: config["system"]["starts"][FOLDED]}},
        ff=FF,
        start=config["system"]["starts"][FOLDED],
        seed=config["seed"],
    log:
        f"{LOGS}/go_native.log",
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 20 * attempt,
    conda:
        ENV
    script:
        "../../scripts/go_native.py"


rule prepare_system:
    input:
        pdb=config["system"]["pdb"] or [],  # a user's PDB: editing it reruns preparation
        native=native_input,
    output:
        pdb=f"{RES}/system/{{start}}.pdb",
        xml=f"{RES}/system/{{start}}.xml",
    params:
        system=prepare_params,
        ff=FF,
        start=lambda wc: config["system"]["starts"][wc.start],
        seed=config["seed"],
    log:
        f"{LOGS}/prepare_system/{{start}}.log",
    benchmark:
        f"{BENCH}/prepare_system/{{start}}.tsv"
    threads: 1
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 20 * attempt,
        gpu=gpu_md(),  # OpenMM on forcefield.platform: auto may pick a GPU
    conda:
        ENV
    script:
        "../../scripts/prepare_system.py"


rule cg_topology:
    input:
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        f"{RES}/system/cg.pdb",
    log:
        f"{LOGS}/cg_topology.log",
    conda:
        ENV
    script:
        "../../scripts/cg_topology.py"


rule reference_md:
    input:
        pdb=f"{RES}/system/{{start}}.pdb",
        xml=f"{RES}/system/{{start}}.xml",
    output:
        f"{RES}/reference/{{start}}_{{rep}}.npz",
    params:
        md=job(S.MDRun, "reference_md"),
        ff=FF,
        seed=lambda wc: seed_of("reference", wc.start, wc.rep),
    log:
        f"{LOGS}/reference_md/{{start}}_{{rep}}.log",
    benchmark:
        f"{BENCH}/reference_md/{{start}}_{{rep}}.tsv"
    threads: MD_THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 2880 * attempt,
        gpu=gpu_md(),
    conda:
        ENV
    script:
        "../../scripts/md_run.py"


rule pool_md:
    input:
        pdb=f"{RES}/system/{{start}}.pdb",
        xml=f"{RES}/system/{{start}}.xml",
    output:
        f"{RES}/pool/{{start}}_{{rep}}.npz",
    params:
        md=job(S.MDRun, "pool_md"),
        ff=FF,
        seed=lambda wc: seed_of("pool", wc.start, wc.rep),  # never a reference run's seed
    log:
        f"{LOGS}/pool_md/{{start}}_{{rep}}.log",
    benchmark:
        f"{BENCH}/pool_md/{{start}}_{{rep}}.tsv"
    threads: MD_THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 2880 * attempt,
        gpu=gpu_md(),
    conda:
        ENV
    script:
        "../../scripts/md_run.py"


rule initial_md:
    input:
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        f"{RES}/seed_{{seed}}/initial/rep_{{rep}}.npz",
    params:
        md=job(S.MDRun, "initial_md"),
        ff=FF,
        seed=lambda wc: seed_of(wc.seed, "initial", wc.rep),
    log:
        f"{LOGS}/seed_{{seed}}/initial_md/rep_{{rep}}.log",
    benchmark:
        f"{BENCH}/seed_{{seed}}/initial_md/rep_{{rep}}.tsv"
    threads: MD_THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 720 * attempt,
        gpu=gpu_md(),
    conda:
        ENV
    script:
        "../../scripts/md_run.py"


rule import_md:
    input:
        unpack(import_source),
        pdb=lambda wc: f"{RES}/system/{INIT_START if wc.which == 'initial_md' else REF_STARTS[0]}.pdb",
        xml=lambda wc: f"{RES}/system/{INIT_START if wc.which == 'initial_md' else REF_STARTS[0]}.xml",
    output:
        f"{RES}/imported/{{which}}/run_{{i}}.npz",
    params:
        md=lambda wc: config[wc.which],
        ff=FF,
        with_forces=lambda wc: wc.which == "initial_md",  # the reference needs positions only
    log:
        f"{LOGS}/imported/{{which}}/run_{{i}}.log",
    benchmark:
        f"{BENCH}/imported/{{which}}/run_{{i}}.tsv"
    wildcard_constraints:
        which="initial_md|reference_md",
        i=r"\d+",
    threads: MD_THREADS
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 720 * attempt,
        gpu=gpu_md(),  # OpenMM on forcefield.platform: auto may pick a GPU
    conda:
        ENV
    script:
        "../../scripts/import_md.py"


rule project_initial:
    input:
        runs=lambda wc: initial_runs(wc.seed),
        fmap=force_map_input,
        pool=pool_validation_input,
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        dataset=f"{RES}/seed_{{seed}}/round_000/dataset/dataset.npz",
    params:
        round=0,
        val_fraction=config["train"]["val_fraction"],
        validation=VALIDATION,
    log:
        f"{LOGS}/seed_{{seed}}/round_000/project_initial.log",
    conda:
        ENV
    script:
        "../../scripts/project.py"
