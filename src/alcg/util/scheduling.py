"""A workaround for Snakemake's scheduler load (issue 32): its default job rate limit.

Snakemake 9 always sets a job rate limit (``--max-jobs-per-timespan``, default ``100/1s``).
While one is set, every scheduling pass that leaves ready jobs waiting (all cores busy) arms a
timer for one more pass a timespan later, and that pass arms the next: each finished job starts
a new chain of one-second passes that lives as long as jobs wait. On 2 cores with a wide DAG
jobs nearly always wait, so the passes per second grow with the jobs finished (about 90 timer
threads alive after 125 jobs of the learning-curve pilot), and each pass re-reads every ready
job. Snakemake's own process then used 0.29 of a core in the pilot. The rate limit does nothing
for a local run of jobs minutes long, so the Snakefile drops Snakemake's default; a limit the
user sets (``--max-jobs-per-timespan`` other than the default, e.g. for a cluster) is kept.
"""
from __future__ import annotations

from typing import Any

#: Snakemake's default ``--max-jobs-per-timespan`` (jobs, timespan in s)
SNAKEMAKE_DEFAULT_RATE = (100, 1)


def drop_default_rate_limit(settings: Any) -> bool:
    """Remove Snakemake's default job rate limit from its ``SchedulingSettings`` in place.

    Returns whether it was removed (False: none set, or one the user chose is kept).
    """
    rate = getattr(settings, "max_jobs_per_timespan", None)
    if rate is None or (rate.max_jobs, rate.timespan) != SNAKEMAKE_DEFAULT_RATE:
        return False
    settings.max_jobs_per_timespan = None
    return True
