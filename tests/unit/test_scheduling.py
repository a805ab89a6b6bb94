"""Snakemake's default job rate limit is dropped from the scheduler; a limit the user chose is kept."""
from types import SimpleNamespace

from snakemake.settings.types import MaxJobsPerTimespan, SchedulingSettings

from alcg.util.scheduling import drop_default_rate_limit


def _workflow(rate: str | None):
    settings = SchedulingSettings(max_jobs_per_timespan=MaxJobsPerTimespan.parse_choice(rate) if rate else None)
    limiter = object() if rate else None
    return SimpleNamespace(scheduling_settings=settings, scheduler=SimpleNamespace(job_rate_limiter=limiter))


def test_the_default_rate_limit_is_dropped_and_a_chosen_one_kept():
    default = _workflow("100/1s")
    assert drop_default_rate_limit(default) and default.scheduler.job_rate_limiter is None
    for chosen in ("10/1s", "100/1m"):
        wf = _workflow(chosen)
        assert not drop_default_rate_limit(wf) and wf.scheduler.job_rate_limiter is not None
    assert not drop_default_rate_limit(_workflow(None))
    assert not drop_default_rate_limit(SimpleNamespace(scheduling_settings=None, scheduler=None))


def test_the_default_is_snakemakes_own():
    """If Snakemake changes its default, the check above no longer matches it: fail loudly."""
    from snakemake.cli import get_argument_parser

    action = next(a for a in get_argument_parser()._actions if "--max-jobs-per-timespan" in a.option_strings)
    rate = action.type(action.default) if isinstance(action.default, str) else action.default
    assert (rate.max_jobs, rate.timespan) == (100, 1)
