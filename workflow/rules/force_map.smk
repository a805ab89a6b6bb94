# The CG force map (mapping.force_map; docs/method/force-maps.md): one per run, shared by every
# seed, arm and round. With constrained no rule here is in the DAG (the projections map with
# CAMapping.map_forces); with another map every projection, the held-out set and a mean-force
# oracle take system/force_map.npz as input (force_map_input in common.smk).


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
