"""Shared fixtures: every test gets its own data directory, never the project's ``data/``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data directory, exported as ``GVW_DATA_DIR`` (and a fixed PII salt)."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("GVW_DATA_DIR", str(d))
    monkeypatch.setenv("GVW_PII_SALT", "test-salt")
    monkeypatch.setenv("DAGSTER_HOME", str(d / ".dagster"))
    (d / ".dagster").mkdir()
    return d
