"""A workaround for Snakemake's scheduler load (issue 32): its default job rate limit.

Snakemake 9 always sets a job rate limit (``--max-jobs-per-timespan``, default ``100/1s``).
While one is set, every scheduling pass that leaves ready jobs waiting (all cores busy) arms a
timer for one more pass a timespan later, and that pass arms the next: each finished job starts
a new chain of one-second passes that lives as long as jobs wait. On 2 cores with a wide DAG
jobs nearly always wait, so the passes per second grow with the jobs finished (about 80-90
timer threads alive after 100-125 jobs of the learning-curve runs), and each pass re-reads
every ready job's inputs and reruns the job selector: Snakemake's own process used 0.09-0.29 of
a core. The rate limit does nothing useful for a local run of jobs minutes long, so the
workflow's ``onstart`` drops Snakemake's default from the scheduler; a limit the user sets
(``--max-jobs-per-timespan`` other than the default, e.g. for a cluster) is kept.

The settings are only known at execution (Snakemake sets them after reading the Snakefile), and
the limiter is built with the scheduler, so this acts on the scheduler itself, before it runs.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Snakemake's default ``--max-jobs-per-timespan`` (jobs, timespan in s)
SNAKEMAKE_DEFAULT_RATE = (100, 1)


def drop_default_rate_limit(workflow: Any) -> bool:
    """Remove Snakemake's default job rate limit from ``workflow.scheduler`` (call at onstart).

    Returns whether it was removed (False: no limit, one the user chose, or a Snakemake whose
    scheduler has no such limiter).
    """
    rate = getattr(getattr(workflow, "scheduling_settings", None), "max_jobs_per_timespan", None)
    scheduler = getattr(workflow, "scheduler", None)
    if rate is None or getattr(scheduler, "job_rate_limiter", None) is None:
        return False
    if (rate.max_jobs, rate.timespan) != SNAKEMAKE_DEFAULT_RATE:
        return False
    scheduler.job_rate_limiter = None
    return True
