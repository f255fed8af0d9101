"""The Dagster code location: assembles assets, checks, jobs, sensors and resources.

Only assembly happens here; each concern lives in its own module.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assets.ingest import ingest_asset_checks, ingest_assets
from orchestration.assets.warehouse import build_dbt_resource, dbt_warehouse_assets
from orchestration.jobs import incremental_job, refresh_all_job
from orchestration.progress import gvw_progress_logger
from orchestration.resources import WarehouseResource
from orchestration.sensors import landing_zone_sensor

defs = dg.Definitions(
    assets=[*ingest_assets, dbt_warehouse_assets],
    asset_checks=[*ingest_asset_checks],
    jobs=[refresh_all_job, incremental_job],
    sensors=[landing_zone_sensor],
    resources={"warehouse": WarehouseResource(), "dbt": build_dbt_resource()},
    # One DuckDB writer at a time: steps run one after another in the run's process.
    executor=dg.in_process_executor,
    loggers={"gvw_progress": gvw_progress_logger},
)
