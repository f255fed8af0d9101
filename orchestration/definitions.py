"""The Dagster code location: assembles assets, checks, jobs, schedules, sensors and resources.

Only assembly happens here; each concern lives in its own module. ``@dg.definitions`` makes
the loading lazy: settings (the schedule's cron) are read when the code location loads, never
at import time.
"""

from __future__ import annotations

import dagster as dg

from orchestration.alerts import run_failure_alert
from orchestration.assets import export as export_module
from orchestration.assets.ingest import ingest_asset_checks, ingest_assets
from orchestration.assets.quality import quality_asset_checks, quality_assets
from orchestration.assets.warehouse import build_dbt_resource, dbt_warehouse_assets
from orchestration.jobs import incremental_job, refresh_all_job
from orchestration.progress import gvw_progress_logger
from orchestration.resources import WarehouseResource
from orchestration.schedules import build_daily_incremental_schedule
from orchestration.sensors import landing_zone_sensor
from orchestration.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    return dg.Definitions(
        assets=[*ingest_assets, dbt_warehouse_assets, *quality_assets, *export_module.export_assets],
        asset_checks=[*ingest_asset_checks, *quality_asset_checks],
        jobs=[refresh_all_job, incremental_job],
        schedules=[build_daily_incremental_schedule(settings.daily_cron)],
        sensors=[landing_zone_sensor, run_failure_alert],
        resources={"warehouse": WarehouseResource(), "dbt": build_dbt_resource()},
        # One DuckDB writer at a time: the steps of a run execute one after another in its process.
        executor=dg.in_process_executor,
        loggers={"gvw_progress": gvw_progress_logger},
    )
