"""The fine-grained side: structures, OpenMM systems, the Go model, MD, mean-force queries, import, backmapping, the CG mapping."""
