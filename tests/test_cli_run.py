"""`gvw generate` + `gvw run` + `gvw status` end to end, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from orchestration.locking import run_lock

GVW = str(Path(sys.executable).parent / "gvw")


def _gvw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GVW, *args], capture_output=True, text=True, env=env, timeout=900)


def _raw_state(data_dir: Path) -> list[tuple]:
    """Every raw record with its outcome (run ids and load times left out)."""
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(
            "select 'v', file_name, record_number, outcome from raw.votes union all "
            "select 'vq', file_name, record_number, reason from raw.vote_quarantine union all "
            "select 'w', file_name, line_number, outcome from raw.workshop_events union all "
            "select 'wq', file_name, line_number, reason from raw.workshop_quarantine order by all"
        ).fetchall()
    finally:
        conn.close()


@pytest.mark.slow
def test_generate_run_status_kill_and_reload_end_to_end(data_dir: Path) -> None:
    env = dict(os.environ)
    generated = _gvw("generate", "--scale", "0.02", "--seed", "7", env=env)
    assert generated.returncode == 0, generated.stderr
    expected = json.loads((data_dir / "expected.json").read_text())["figures"]

    # A second generate into a filled landing zone refuses, in one line.
    again = _gvw("generate", "--scale", "0.02", env=env)
    assert again.returncode == 1 and again.stderr.startswith("gvw:") and again.stderr.count("\n") == 1

    run = _gvw("run", env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    for stage in ("ingest_landing_zone", "dbt_warehouse_assets", "export_datasets"):
        assert f"start  {stage}" in run.stdout and f"done   {stage}" in run.stdout
    for name, value in expected.items():
        assert f"{name:<28} {value:>10,}" in run.stdout, name
    assert (data_dir / "exports" / "manifest.json").exists()

    status = _gvw("status", env=env)
    assert status.returncode == 0, status.stderr
    assert f"{'votes':<28} {expected['votes']:>10,}" in status.stdout
    assert "last run: refresh_all" in status.stdout and "SUCCESS" in status.stdout
    assert "suites passed" in status.stdout and "Every delivered record is accounted for" in status.stdout
    assert "exports: version v" in status.stdout

    # Nothing new and everything current: the rerun ingests nothing and skips every later step.
    version = json.loads((data_dir / "exports" / "manifest.json").read_text())["version_id"]
    rerun = _gvw("run", env=env)
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    assert "skip   dbt_warehouse_assets" in rerun.stdout and "start  dbt_warehouse_assets" not in rerun.stdout
    assert "skip   export_datasets" in rerun.stdout
    assert "emitted no result" not in rerun.stderr
    assert json.loads((data_dir / "exports" / "manifest.json").read_text())["version_id"] == version

    # Kill a forced run (and its dbt child) while it holds the warehouse pool slot: the next
    # run marks it failed, frees the slot and goes on.
    loaded = _raw_state(data_dir)
    victim = subprocess.Popen([GVW, "run", "--force"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, start_new_session=True)
    for line in victim.stdout:
        if "start  dbt_warehouse_assets" in line:
            break
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()

    # The killed run re-materialized the raw layer but not the marts: with no new file, the
    # next run still rebuilds everything downstream (it does not trust the older marts).
    after_kill = _gvw("run", env=env)
    assert after_kill.returncode == 0, after_kill.stdout[-4000:] + after_kill.stderr[-4000:]
    assert "marked interrupted run" in after_kill.stdout
    assert "done   dbt_warehouse_assets" in after_kill.stdout and "done   export_datasets" in after_kill.stdout

    # Backfill one file: the raw layer ends as it was after the first load.
    votes_file = sorted(p.name for p in (data_dir / "landing" / "votes").iterdir())[0]
    reload = _gvw("reload", f"votes/{votes_file}", env=env)
    assert reload.returncode == 0, reload.stdout[-3000:] + reload.stderr[-3000:]
    assert _raw_state(data_dir) == loaded
    for name, value in expected.items():
        assert f"{name:<28} {value:>10,}" in reload.stdout, name

    unknown = _gvw("reload", "votes/no-such-file.csv", env=env)
    assert unknown.returncode == 1 and "no-such-file.csv" in unknown.stderr


def test_a_second_run_on_the_same_data_dir_stops_with_a_clear_message(data_dir: Path) -> None:
    env = dict(os.environ)
    with run_lock(data_dir, wait_seconds=0):
        blocked = _gvw("run", "--wait", "0.5", env=env)
    assert blocked.returncode == 1
    assert "another run holds" in blocked.stderr and f"pid {os.getpid()}" in blocked.stderr
    assert not (data_dir / "warehouse.duckdb").exists()

