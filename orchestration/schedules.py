"""Schedules: the daily incremental refresh."""

from __future__ import annotations

import dagster as dg

from orchestration.jobs import incremental_job

SCHEDULE_TIMEZONE = "UTC"


def build_daily_incremental_schedule(cron: str) -> dg.ScheduleDefinition:
    """``daily_incremental``: new landing files -> dbt -> quality -> exports, at ``cron`` UTC.

    The cron comes from ``GVW_DAILY_CRON`` (default 02:00 UTC), read when the code location
    loads, not at import. Its timezone is explicit so that a server in another zone runs it at
    the same instant.
    """
    return dg.ScheduleDefinition(
        name="daily_incremental",
        job=incremental_job,
        cron_schedule=cron,
        execution_timezone=SCHEDULE_TIMEZONE,
        description=f"Incremental refresh at `{cron}` ({SCHEDULE_TIMEZONE}): new landing files, then "
        "the warehouse, quality checks and exports.",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
