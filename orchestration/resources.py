"""Dagster resources: the warehouse (DuckDB file + data directory) and dbt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.settings import Settings, load_settings


class WarehouseResource(dg.ConfigurableResource):
    """The data directory and its DuckDB warehouse.

    ``data_dir`` left empty means ``GVW_DATA_DIR`` (default ``./data``), read when the
    resource is used, never at import time.
    """

    data_dir: str = ""

    def settings(self) -> Settings:
        settings = load_settings()
        if self.data_dir:
            settings = Settings(**{**settings.__dict__, "data_dir": Path(self.data_dir).resolve()})
        return settings

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse, closed on exit.

        DuckDB allows one writing process per file: writers hold the connection only
        for the duration of one step, and readers open it read-only.
        """
        settings = self.settings()
        settings.ensure_dirs()
        conn = connect_warehouse(settings, read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


def connect_warehouse(settings: Settings, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file with the pipeline's memory limit and spill directory."""
    settings.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(settings.warehouse_path), read_only=read_only,
                          config=settings.duckdb_config())


# Dagster concurrency pool of every step that opens the warehouse file. DuckDB allows one
# writing process (or several read-only ones, never both): the instance limits the pool to one
# step at a time across runs (see orchestration/instance.py).
WAREHOUSE_POOL = "duckdb_warehouse"

# Who answers for the assets (shown in the Dagster UI).
PIPELINE_OWNERS = ["team:data-engineering"]
