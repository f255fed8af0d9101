"""The instance's event log (orchestration/dagster_storage.py): Dagster's SQLite files, reused
connections without an fsync per event, readable by a fresh instance (as `dagster dev` reads
what `gvw run` wrote)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import text

from orchestration.dagster_storage import ENGINES_KEPT, BufferedSqliteEventLogStorage
from orchestration.instance import DAGSTER_YAML, ensure_dagster_home
from orchestration.settings import load_settings


@dg.asset
def numbers() -> list[int]:
    return [1, 2, 3]


@dg.asset_check(asset=numbers)
def numbers_are_positive(numbers: list[int]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=all(n > 0 for n in numbers))


@pytest.fixture()
def home(data_dir: Path) -> Path:
    return ensure_dagster_home(load_settings())


def test_the_instance_uses_the_buffered_event_log(home: Path) -> None:
    assert "orchestration.dagster_storage" in (home / "dagster.yaml").read_text()
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.event_log_storage, BufferedSqliteEventLogStorage)
        with instance.event_log_storage.index_connection() as conn:
            # 1 = NORMAL: in WAL mode a commit does not wait for fsync
            assert conn.execute(text("pragma synchronous")).scalar() == 1
            assert conn.execute(text("pragma journal_mode")).scalar() == "wal"


def test_events_written_by_one_instance_are_read_by_another(home: Path) -> None:
    with dg.DagsterInstance.get() as writer:
        result = dg.materialize([numbers, numbers_are_positive], instance=writer)
        assert result.success
        run_id = result.run_id
        written = len(writer.all_logs(run_id))
    with dg.DagsterInstance.get() as reader:   # a new process would see the same
        assert len(reader.all_logs(run_id)) == written > 0
        latest = reader.get_latest_materialization_event(dg.AssetKey("numbers"))
        assert latest is not None and latest.run_id == run_id
        evaluation = reader.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("numbers"), "numbers_are_positive")])
        assert next(iter(evaluation.values())).run_id == run_id


def test_engines_of_old_runs_are_disposed(home: Path) -> None:
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        for _ in range(ENGINES_KEPT + 3):
            assert dg.materialize([numbers], instance=instance).success
        assert len(storage._engines) <= ENGINES_KEPT  # noqa: SLF001


# What `gvw setup` wrote before the buffered event log (data directories made then have it).
EARLIER_DAGSTER_YAML = """\
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


def test_an_unedited_earlier_default_config_is_upgraded_and_an_edited_one_kept(data_dir: Path) -> None:
    settings = load_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    config.write_text(EARLIER_DAGSTER_YAML)
    ensure_dagster_home(settings)
    assert config.read_text() == DAGSTER_YAML
    edited = EARLIER_DAGSTER_YAML.replace("max_concurrent_runs: 1", "max_concurrent_runs: 2")
    config.write_text(edited)
    ensure_dagster_home(settings)
    assert config.read_text() == edited
    config.unlink()
    ensure_dagster_home(settings)
    assert config.read_text() == DAGSTER_YAML
