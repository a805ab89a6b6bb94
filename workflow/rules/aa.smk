# All-atom side: system preparation, reference and initial MD, AA -> CG projection.


rule prepare_system:
    output:
        pdb=f"{RES}/system/{{start}}.pdb",
        xml=f"{RES}/system/{{start}}.xml",
    params:
        system=config["system"],
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
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/prepare_system.py"


rule reference_md:
    input:
        pdb=f"{RES}/system/{{start}}.pdb",
        xml=f"{RES}/system/{{start}}.xml",
    output:
        f"{RES}/reference/{{start}}_{{rep}}.npz",
    params:
        md=config["reference_md"],
        ff=FF,
        seed=lambda wc: seed_of("reference", wc.start, wc.rep),
    log:
        f"{LOGS}/reference_md/{{start}}_{{rep}}.log",
    benchmark:
        f"{BENCH}/reference_md/{{start}}_{{rep}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 2880 * attempt,
        gpu=1 if FF.get("platform", "auto") in ("auto", "CUDA") else 0,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/md_run.py"


rule initial_md:
    input:
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        f"{RES}/initial/rep_{{rep}}.npz",
    params:
        md=config["initial_md"],
        ff=FF,
        seed=lambda wc: seed_of("initial", wc.rep),
    log:
        f"{LOGS}/initial_md/rep_{{rep}}.log",
    benchmark:
        f"{BENCH}/initial_md/rep_{{rep}}.tsv"
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 4000 * attempt,
        runtime=lambda wc, attempt: 720 * attempt,
        gpu=1 if FF.get("platform", "auto") in ("auto", "CUDA") else 0,
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/md_run.py"


rule project_initial:
    input:
        runs=expand(f"{RES}/initial/rep_{{rep}}.npz", rep=range(config["initial_md"]["replicas"])),
        pdb=f"{RES}/system/{INIT_START}.pdb",
        xml=f"{RES}/system/{INIT_START}.xml",
    output:
        dataset=f"{RES}/round_000/dataset/dataset.npz",
        cg_pdb=f"{RES}/system/cg.pdb",
    params:
        round=0,
    log:
        f"{LOGS}/round_000/project_initial.log",
    conda:
        "../../envs/alcg.yaml"
    script:
        "../../scripts/project.py"
