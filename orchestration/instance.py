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
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 1
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
