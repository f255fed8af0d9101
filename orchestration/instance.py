"""The Dagster instance of a data directory: ``$GVW_DATA_DIR/.dagster`` unless DAGSTER_HOME says otherwise."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from orchestration.settings import Settings

# Written once, when missing (or when it is an unedited earlier default); a data engineer may
# edit it afterwards.
DAGSTER_YAML = """\
# Dagster instance settings for Global Vision Warehouse (written by `gvw setup`).
telemetry:
  enabled: false
# Dagster's SQLite storage in DAGSTER_HOME, with an event log that reuses its connections and
# does not fsync every event (see orchestration/dagster_storage.py).
storage:
  custom:
    module: orchestration.dagster_storage
    class: WarehouseSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
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


# SHA-256 of earlier defaults of DAGSTER_YAML: such a file was never edited, so it is replaced.
EARLIER_DEFAULTS = {
    "db2f34e94b1e633d6ca25f0d8357fcbb8fac24ea73474c1f3025e105255fa176",  # before the buffered event log
}


def ensure_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at the data directory's instance (unless set) and create it."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or hashlib.sha256(config.read_bytes()).hexdigest() in EARLIER_DEFAULTS:
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
