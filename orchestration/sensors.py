"""Sensors: start an ingestion run when files that are not in the load ledger land."""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.

import hashlib
import json

import dagster as dg

from orchestration.jobs import incremental_job
from orchestration.ingest import WarehouseBusy, file_hashes, list_landing_files, read_ledger_hashes
from orchestration.resources import WarehouseResource



def new_files_run_key(shas: set[str] | list[str]) -> str:
    """Run key of a set of new files: the same files never start two runs."""
    return hashlib.sha256("\n".join(sorted(set(shas))).encode("ascii")).hexdigest()


@dg.sensor(
    name="landing_zone_sensor",
    # the ingestion assets and everything downstream of them (dbt, quality, exports)
    target=incremental_job,
    minimum_interval_seconds=30,
    description="Requests an ingestion run (and everything downstream) when landing files whose content "
                "is not in the load ledger appear.",
)
def landing_zone_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    settings = warehouse.settings()
    files = list_landing_files(settings.landing_dir)
    if not files:
        return dg.SkipReason(f"no landing files under {settings.landing_dir}")
    # cursor: file_name -> [size, mtime_ns, sha256], so unchanged files are not re-hashed
    try:
        cache = json.loads(context.cursor) if context.cursor else {}
    except ValueError:
        cache = {}
    hashes = file_hashes(files, cache)
    cursor = json.dumps(cache, sort_keys=True)
    try:
        loaded = read_ledger_hashes(settings.warehouse_path)
    except WarehouseBusy as exc:
        return dg.SensorResult(skip_reason=f"warehouse is busy ({exc}); will look again", cursor=cursor)
    new = {name: sha for name, sha in hashes.items() if sha not in loaded}
    if not new:
        return dg.SensorResult(
            skip_reason=f"nothing new: all {len(files)} landing file(s) are in the load ledger", cursor=cursor)
    context.log.info(f"{len(new)} new landing file(s): {', '.join(sorted(new))}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=new_files_run_key(set(new.values())),
                                    tags={"gvw/new_files": str(len(new))})],
        cursor=cursor,
    )
