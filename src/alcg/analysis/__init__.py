"""Analysis: evaluation, TICA, held-out forces, convergence, statistics, summaries, the pre-registered primary table, plots."""
