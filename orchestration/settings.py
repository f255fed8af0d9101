"""Run-time configuration, read from ``GVW_*`` environment variables when asked for.

Nothing here runs at import time: callers build a :class:`Settings` with
:func:`load_settings` when a resource, a CLI command or a test needs one.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


@dataclass(frozen=True)
class Settings:
    """Where the warehouse lives and how it behaves; every path is absolute."""

    data_dir: Path
    pii_salt_override: str | None = None
    min_cell: int = 5
    export_versions_kept: int = 5
    export_compression: str = "snappy"
    alert_webhook: str | None = None
    daily_cron: str = "0 2 * * *"
    # DuckDB keeps up to 80 % of RAM by default; the pipeline must fit a small machine
    # next to other jobs, so every connection gets this limit and spills to temp_dir.
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int | None = None

    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def votes_landing_dir(self) -> Path:
        return self.landing_dir / "votes"

    @property
    def workshops_landing_dir(self) -> Path:
        return self.landing_dir / "workshops"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "exports"

    @property
    def quality_dir(self) -> Path:
        return self.data_dir / "quality"

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills what does not fit in ``duckdb_memory_limit``."""
        return self.data_dir / "tmp" / "duckdb"

    def duckdb_config(self) -> dict[str, str | int]:
        """Connection settings every DuckDB connection of the pipeline uses."""
        config: dict[str, str | int] = {
            "memory_limit": self.duckdb_memory_limit,
            # one folder per process: two processes spilling into one folder corrupt each
            # other's files (DuckDB names them per database, not per process)
            "temp_directory": str(self.duckdb_temp_dir / f"p{os.getpid()}"),
        }
        if self.duckdb_threads:
            config["threads"] = self.duckdb_threads
        return config

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / ".dagster"

    @property
    def expected_path(self) -> Path:
        """Answer key written by ``gvw generate`` beside ``landing/``."""
        return self.data_dir / "expected.json"

    @property
    def pii_salt_path(self) -> Path:
        return self.data_dir / ".pii_salt"

    def pii_salt(self) -> str:
        """The salt for pseudonymising e-mail addresses.

        ``GVW_PII_SALT`` when set; otherwise a random salt generated once and kept
        in the data directory, so that the same address always maps to the same key.
        """
        if self.pii_salt_override:
            return self.pii_salt_override
        path = self.pii_salt_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_hex(32), encoding="ascii")
            os.chmod(tmp, 0o600)
            try:
                # link() fails if another process won the race: keep its salt.
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text(encoding="ascii").strip()

    def ensure_dirs(self) -> None:
        for d in (self.votes_landing_dir, self.workshops_landing_dir, self.exports_dir,
                  self.quality_dir, self.dagster_home):
            d.mkdir(parents=True, exist_ok=True)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("GVW_DATA_DIR") or DEFAULT_DATA_DIR).expanduser().resolve()
    compression = (env.get("GVW_EXPORT_COMPRESSION") or "snappy").strip().lower()
    if compression not in {"snappy", "zstd", "gzip", "none"}:
        raise ValueError(f"GVW_EXPORT_COMPRESSION must be snappy, zstd, gzip or none, got {compression!r}")
    return Settings(
        data_dir=data_dir,
        pii_salt_override=(env.get("GVW_PII_SALT") or None),
        min_cell=_int(env, "GVW_MIN_CELL", 5),
        export_versions_kept=_int(env, "GVW_EXPORT_VERSIONS_KEPT", 5),
        export_compression=compression,
        alert_webhook=(env.get("GVW_ALERT_WEBHOOK") or None),
        daily_cron=(env.get("GVW_DAILY_CRON") or "0 2 * * *"),
        duckdb_memory_limit=_memory_limit(env),
        duckdb_threads=_int(env, "GVW_DUCKDB_THREADS", 0) or None,
    )


# DuckDB's size units (memory_limit and friends), in bytes.
_SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(" + "|".join(_SIZE_UNITS) + r")?\s*$")


def size_bytes(size: str) -> int | None:
    """Bytes of a DuckDB size such as ``1GB``, ``512MB`` or ``953.6 MiB`` (a bare number is
    bytes; None if not a size)."""
    match = _SIZE.match(size)
    if not match:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])


def _memory_limit(env: Mapping[str, str]) -> str:
    raw = (env.get("GVW_DUCKDB_MEMORY_LIMIT") or "1GB").strip().replace(" ", "")
    if size_bytes(raw) is None or raw[-1:].isdigit():   # the unit is required here
        raise ValueError(f"GVW_DUCKDB_MEMORY_LIMIT must be a size such as 1GB or 512MB, got {raw!r}")
    return raw
