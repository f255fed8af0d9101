"""Configuration and the command line's plumbing (the full run is tested end to end elsewhere)."""

from __future__ import annotations

import subprocess
import sys
import os
from pathlib import Path

import dagster as dg
import pytest

from orchestration.cli import main
from orchestration.progress import gvw_progress_logger
from orchestration.settings import load_settings


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings({})
    assert settings.data_dir.name == "data" and settings.data_dir.is_absolute()
    assert settings.min_cell == 5 and settings.export_compression == "snappy"

    custom = load_settings({"GVW_DATA_DIR": str(tmp_path), "GVW_MIN_CELL": "10", "GVW_EXPORT_COMPRESSION": "ZSTD"})
    assert custom.warehouse_path == tmp_path / "warehouse.duckdb"
    assert custom.landing_dir == tmp_path / "landing"
    assert custom.min_cell == 10 and custom.export_compression == "zstd"


def test_every_duckdb_connection_gets_the_memory_limit_and_spill_directory(tmp_path: Path) -> None:
    from orchestration.resources import connect_warehouse

    assert load_settings({}).duckdb_config()["memory_limit"] == "1GB"
    settings = load_settings({"GVW_DATA_DIR": str(tmp_path), "GVW_DUCKDB_MEMORY_LIMIT": "300MB",
                              "GVW_DUCKDB_THREADS": "1"})
    conn = connect_warehouse(settings)
    try:
        limit, temp_dir, threads = conn.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory'), current_setting('threads')"
        ).fetchone()
    finally:
        conn.close()
    assert limit.replace(" ", "") in {"286.1MiB", "300.0MB"}   # DuckDB shows it in its own unit
    assert temp_dir == str(tmp_path / "tmp" / "duckdb" / f"p{os.getpid()}") and threads == 1


@pytest.mark.parametrize(
    ("name", "value"), [("GVW_MIN_CELL", "five"), ("GVW_EXPORT_COMPRESSION", "lz77"),
                        ("GVW_DUCKDB_MEMORY_LIMIT", "lots"), ("GVW_DUCKDB_THREADS", "two")]
)
def test_settings_reject_bad_values(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings({name: value})


def test_pii_salt_is_generated_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings({"GVW_DATA_DIR": str(tmp_path)})
    first = settings.pii_salt()
    assert len(first) == 64
    assert load_settings({"GVW_DATA_DIR": str(tmp_path)}).pii_salt() == first
    assert (tmp_path / ".pii_salt").stat().st_mode & 0o077 == 0
    assert load_settings({"GVW_DATA_DIR": str(tmp_path), "GVW_PII_SALT": "fixed"}).pii_salt() == "fixed"


def test_setup_creates_data_dir_and_dagster_instance(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["setup"]) == 0
    for sub in ("landing/votes", "landing/workshops", "exports", "quality"):
        assert (data_dir / sub).is_dir()
    config = (data_dir / ".dagster" / "dagster.yaml").read_text()
    assert "telemetry" in config
    assert str(data_dir) in capsys.readouterr().out


def test_status_on_an_empty_data_dir(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 0
    assert "not built yet" in capsys.readouterr().out


def test_cli_help_is_installed_as_console_script() -> None:
    gvw = Path(sys.executable).parent / "gvw"
    out = subprocess.run([str(gvw), "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("setup", "generate", "run", "status"):
        assert command in out


def test_bad_configuration_is_one_line_and_non_zero(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GVW_MIN_CELL", "lots")
    assert main(["status"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("gvw:") and "GVW_MIN_CELL" in err and "\n" not in err


def test_progress_logger_prints_stages_and_asset_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    @dg.asset
    def counted() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"records_read": 1234})

    @dg.asset(deps=[counted])
    def broken() -> None:
        raise RuntimeError("disk on fire")

    defs = dg.Definitions(assets=[counted, broken], loggers={"gvw_progress": gvw_progress_logger},
                          jobs=[dg.define_asset_job("both", dg.AssetSelection.all())])
    result = defs.resolve_job_def("both").execute_in_process(
        run_config={"loggers": {"gvw_progress": {}}}, raise_on_error=False
    )
    assert not result.success
    out = capsys.readouterr().out
    assert "start  counted" in out and "done   counted" in out
    assert "asset counted: records_read=1,234" in out
    assert "FAILED broken" in out and "disk on fire" in out
