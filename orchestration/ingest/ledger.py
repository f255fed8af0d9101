"""The load ledger: which file contents (SHA-256) are loaded, read by runs and the sensor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.ingest.files import LandingFile, sha256_hex


@dataclass(frozen=True)
class LedgerEntry:
    sha256: str
    file_name: str
    delivery_seq: int


def ledger_entries(conn: duckdb.DuckDBPyConnection) -> dict[str, LedgerEntry]:
    """sha256 -> entry, for every file already loaded."""
    rows = conn.execute("select sha256, file_name, delivery_seq from raw.load_ledger").fetchall()
    return {sha: LedgerEntry(sha, name, seq) for sha, name, seq in rows}


class WarehouseBusy(RuntimeError):
    """The warehouse file is locked by a writer (an ingestion run): try again later."""


def read_ledger_hashes(warehouse_path: Path) -> set[str]:
    """SHA-256 of every loaded file, through a short read-only connection.

    A missing warehouse (or one without a ledger yet) has loaded nothing. A warehouse
    locked by a writing process raises :class:`WarehouseBusy`.
    """
    warehouse_path = Path(warehouse_path)
    if not warehouse_path.exists():
        return set()
    try:
        conn = duckdb.connect(str(warehouse_path), read_only=True)
    except duckdb.Error as exc:  # IOException (lock held by a writer) or a same-process conflict
        raise WarehouseBusy(str(exc).splitlines()[0]) from exc
    try:
        exists = conn.execute(
            "select count(*) from duckdb_tables() where schema_name = 'raw' and table_name = 'load_ledger'"
        ).fetchone()[0]
        if not exists:
            return set()
        return {row[0] for row in conn.execute("select sha256 from raw.load_ledger").fetchall()}
    finally:
        conn.close()


def file_hashes(files: list[LandingFile], cache: dict[str, list] | None = None) -> dict[str, str]:
    """file_name -> SHA-256 of its content. ``cache`` maps file_name -> [size, mtime_ns, sha]
    from an earlier call and is updated in place: unchanged files are not read again."""
    cache = {} if cache is None else cache
    out: dict[str, str] = {}
    for f in files:
        hit = cache.get(f.file_name)
        if hit and hit[0] == f.size_bytes and hit[1] == f.mtime_ns:
            out[f.file_name] = hit[2]
            continue
        sha = sha256_hex(f.read_bytes())
        cache[f.file_name] = [f.size_bytes, f.mtime_ns, sha]
        out[f.file_name] = sha
    for name in [n for n in cache if n not in out]:
        del cache[name]
    return out
