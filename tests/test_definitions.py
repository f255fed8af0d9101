"""The code location loads the way `dagster dev` and `gvw run` load it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs
from orchestration.settings import PROJECT_ROOT


def test_dagster_definitions_validate_with_the_workspace(data_dir: Path) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_every_asset_is_in_its_group_and_the_jobs_schedule_and_sensors_exist(data_dir: Path) -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.get_all_asset_keys() if graph.get(key).is_materializable}
    assert {"ingest", "warehouse", "quality", "exports"} <= groups
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            assert node.owners, f"{key.to_user_string()} has no owner"
            if node.group_name in {"ingest", "quality", "exports"}:
                assert node.description, f"{key.to_user_string()} has no description"
    assert {j.name for j in [definitions.resolve_job_def("refresh_all"), definitions.resolve_job_def("incremental")]}
    schedule = definitions.resolve_schedule_def("daily_incremental")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "UTC"
    assert definitions.resolve_sensor_def("landing_zone_sensor").name == "landing_zone_sensor"
    assert definitions.resolve_sensor_def("run_failure_alert").name == "run_failure_alert"


def test_schedule_cron_is_configurable_when_the_location_loads(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("GVW_DAILY_CRON", "30 4 * * *")
    assert defs().resolve_schedule_def("daily_incremental").cron_schedule == "30 4 * * *"


def test_the_export_step_comes_after_the_blocking_quality_checks(data_dir: Path) -> None:
    """Exports depend on the marts whose blocking checks must pass first."""
    graph = defs().resolve_asset_graph()
    exports = [k for k in graph.get_all_asset_keys() if k.path[0] == "exports"]
    assert exports
    for key in exports:
        parents = graph.get(key).parent_keys
        assert parents, key
        blocking = [c for p in parents for c in graph.get_check_keys_for_assets({p})]
        assert blocking, f"{key.to_user_string()}: no check on its upstream marts"
    assert isinstance(defs(), dg.Definitions)


def test_the_daily_schedule_requests_an_incremental_run_at_two_utc(data_dir: Path) -> None:
    import datetime as dt

    schedule = defs().resolve_schedule_def("daily_incremental")
    tick = dt.datetime(2026, 11, 29, 2, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        result = schedule.evaluate_tick(dg.build_schedule_context(instance=instance, scheduled_execution_time=tick))
    assert [r.job_name or schedule.job_name for r in result.run_requests] == ["incremental"]
    from dagster._utils.schedules import cron_string_iterator

    next_ticks = cron_string_iterator(tick.timestamp(), schedule.cron_schedule, schedule.execution_timezone)
    assert next(next_ticks) == tick
    assert next(next_ticks) == tick + dt.timedelta(days=1)
