"""Jobs: what a run materializes."""

from __future__ import annotations

import dagster as dg

INGEST_GROUP = "ingest"

refresh_all_job = dg.define_asset_job(
    name="refresh_all",
    selection=dg.AssetSelection.all(),
    description="Everything: ingest new landing files, rebuild the warehouse, validate, export.",
)

incremental_job = dg.define_asset_job(
    name="incremental",
    # The export multi-asset publishes one version of every dataset, so it is selected whole.
    selection=dg.AssetSelection.groups(INGEST_GROUP).downstream().required_multi_asset_neighbors(),
    description="New landing files, then everything downstream of them.",
)
