"""Snakemake's default job rate limit is dropped; a limit the user chose is kept."""
from snakemake.settings.types import MaxJobsPerTimespan, SchedulingSettings

from alcg.util.scheduling import drop_default_rate_limit


def test_the_default_rate_limit_is_dropped_and_a_chosen_one_kept():
    default = SchedulingSettings(max_jobs_per_timespan=MaxJobsPerTimespan.parse_choice("100/1s"))
    assert drop_default_rate_limit(default) and default.max_jobs_per_timespan is None
    chosen = SchedulingSettings(max_jobs_per_timespan=MaxJobsPerTimespan.parse_choice("10/1s"))
    assert not drop_default_rate_limit(chosen) and chosen.max_jobs_per_timespan.max_jobs == 10
    minute = SchedulingSettings(max_jobs_per_timespan=MaxJobsPerTimespan.parse_choice("100/1m"))
    assert not drop_default_rate_limit(minute) and minute.max_jobs_per_timespan.timespan == 60
    unset = SchedulingSettings()
    assert not drop_default_rate_limit(unset) and unset.max_jobs_per_timespan is None
