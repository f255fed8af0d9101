"""`gvw generate` + `gvw run` + `gvw status` end to end, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.locking import run_lock

GVW = str(Path(sys.executable).parent / "gvw")


def _gvw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GVW, *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.mark.slow
def test_generate_run_and_status_end_to_end(data_dir: Path) -> None:
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


def test_a_second_run_on_the_same_data_dir_stops_with_a_clear_message(data_dir: Path) -> None:
    env = dict(os.environ)
    with run_lock(data_dir, wait_seconds=0):
        blocked = _gvw("run", "--wait", "0.5", env=env)
    assert blocked.returncode == 1
    assert "another run holds" in blocked.stderr and f"pid {os.getpid()}" in blocked.stderr
    assert not (data_dir / "warehouse.duckdb").exists()
