"""The Dagster instance of a data directory: ``$GVW_DATA_DIR/.dagster`` unless DAGSTER_HOME says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.settings import Settings

# Written once, when missing; a data engineer may edit it afterwards.
DAGSTER_YAML = """\
# Dagster instance settings for Global Vision Warehouse (written by `gvw setup`).
telemetry:
  enabled: false
concurrency:
  # DuckDB allows one writing process per database file: one run at a time, and every
  # asset that writes the warehouse is in the pool `duckdb_warehouse`, limited to one step.
  runs:
    max_concurrent_runs: 1
  pools:
    default_limit: 1
# With `make dev` (daemon running): fail runs whose worker died and free their pool slots.
# `gvw run` does the same for its own interrupted runs before it starts.
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 60
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the data directory's instance (unless set) and create it."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
