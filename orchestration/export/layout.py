"""The exports folder: where each part lives, and the file-system moves that keep it consistent.

    exports/
      manifest.json            the published version: datasets, columns, rows, SHA-256 of every file
      DATA_DICTIONARY.md       datasets, grain, columns, types, descriptions (from the dbt docs)
      bi.duckdb                views over the Parquet files, for BI tools (open read-only)
      <dataset> -> _current/<dataset>           fixed relative symlinks, one per dataset
      _current  -> _versions/<version_id>       THE commit point: one atomic rename flips every dataset
      _versions/<version_id>/<dataset>/*.parquet   complete, immutable versions (N kept)
      _versions/<version_id>/manifest.json         that version's manifest
      _staging/<version_id>/   a version being written (a crash leaves it here; the next publish removes it)
      _trash/                  versions being pruned

A reader that opens ``exports/<dataset>/**/*.parquet`` resolves ``_current`` once per file
open. Parquet file names carry the version id, so a reader that lists one version and
opens files after the flip gets "file not found" (and retries), never a silent mix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MANIFEST_NAME = "manifest.json"
DICTIONARY_NAME = "DATA_DICTIONARY.md"
BI_DATABASE_NAME = "bi.duckdb"
CURRENT_LINK = "_current"
VERSIONS_DIR = "_versions"
STAGING_DIR = "_staging"
TRASH_DIR = "_trash"
LOCK_NAME = ".publish.lock"
TEMP_MARKER = ".tmp-"
RESERVED_NAMES = frozenset({
    MANIFEST_NAME, DICTIONARY_NAME, BI_DATABASE_NAME, CURRENT_LINK, VERSIONS_DIR, STAGING_DIR,
    TRASH_DIR, LOCK_NAME,
})

VERSION_ID_PATTERN = re.compile(r"^v\d{8}T\d{12}Z-[a-z0-9]{1,16}$")


def version_dir(exports_dir: Path, version_id: str) -> Path:
    return exports_dir / VERSIONS_DIR / version_id


def version_relpath(version_id: str) -> str:
    return f"{VERSIONS_DIR}/{version_id}"


def current_version(exports_dir: Path) -> str | None:
    """The version ``_current`` points at, or None before the first publish."""
    link = exports_dir / CURRENT_LINK
    try:
        target = os.readlink(link)
    except (FileNotFoundError, OSError):
        return None
    name = Path(target).name
    return name if VERSION_ID_PATTERN.match(name) else None


def list_versions(exports_dir: Path) -> list[str]:
    """Complete versions under ``_versions/``, oldest first (ids sort by time)."""
    root = exports_dir / VERSIONS_DIR
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and VERSION_ID_PATTERN.match(p.name))


def temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{TEMP_MARKER}{os.getpid()}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file and folder of a staged version to disk before it is renamed into place."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fsync_file(Path(dirpath) / name)
        fsync_dir(Path(dirpath))


def atomic_write_bytes(final: Path, data: bytes) -> None:
    """Write ``final`` through a temp file and ``os.replace``: readers see the old or the new file."""
    tmp = temp_path(final)
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)


def atomic_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` (relative) with one rename: no moment without a link."""
    tmp = temp_path(link)
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)
