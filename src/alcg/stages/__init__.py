"""One function per workflow rule: read inputs, call the package, write outputs.

One module per rule file (``aa``, ``cg``, ``query``, ``analysis``). Stages take typed settings
(:mod:`alcg.config.settings`) and file paths; they hold no defaults and no policy. The adapters in
``scripts/`` only unpack ``snakemake.input/output/params`` and call them.
"""
