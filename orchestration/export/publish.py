"""Publish one consistent, versioned set of Parquet exports of the marts.

Order of a publish (under an exclusive lock on the exports folder):

1. recover: remove what a crashed publish left (staging, trash, a version that never
   became current) and, if the crash came between the flip and the manifest, bring the
   top-level files in line with ``_current``;
2. plan: find every mart, map its types, refuse identifier columns (nothing written yet);
3. in one read transaction of the warehouse (one snapshot): fingerprint the marts, and
   stop there, writing nothing, when they hold exactly what is published (a re-run without
   new data keeps its version); else ``COPY ... TO`` Parquet for every dataset into
   ``_staging/<version_id>/``;
4. check: read every file back (row counts, schema, no e-mail-like value, suppression
   holds), hash it, write the version's manifest and dictionary, fsync;
5. rename the staged folder to ``_versions/<version_id>/`` (complete, not yet visible);
6. flip ``_current`` to it: one atomic rename publishes every dataset;
7. replace ``bi.duckdb``, ``DATA_DICTIONARY.md`` and, last, ``manifest.json``;
8. prune old versions to the number kept.

A crash before 6 leaves the previous version current and its manifest untouched; a crash
between 6 and 7 leaves the new version readable and the previous manifest consistent with
its (kept) files, and the next publish repairs the top-level files first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.export import layout
from orchestration.export.bi import build_bi_database
from orchestration.export.contract import manifest_schema_changes
from orchestration.export.datasets import (
    DATASETS,
    FORBIDDEN_COLUMN_PATTERN,
    SUPPRESSED_COLUMN,
    SUPPRESSED_DESCRIPTION,
    DatasetSpec,
)
from orchestration.export.dictionary import render_dictionary
from orchestration.export.docs import DbtDocs, ModelDoc
from orchestration.export.typemap import (
    ExportColumn,
    UnsupportedTypeError,
    export_column,
    quote_ident,
    value_expression,
)
from orchestration.settings import Settings

MANIFEST_FORMAT_VERSION = 1
CRASH_ENV = "GVW_TEST_CRASH_AT"
CRASH_POINTS = ("during_stage", "after_stage", "after_version", "after_swap", "after_manifest")
_CODECS = {"snappy": "snappy", "zstd": "zstd", "gzip": "gzip", "none": "uncompressed"}
# An e-mail address anywhere in a string value: a direct identifier that must not leave.
EMAIL_VALUE_PATTERN = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


class ExportError(RuntimeError):
    """The export cannot be published; the previous version stays current."""


class PrivacyError(ExportError):
    """A dataset would publish a direct identifier."""


@dataclass(frozen=True)
class ExportOptions:
    exports_dir: Path
    min_cell: int = 5
    versions_kept: int = 5
    compression: str = "snappy"
    # Datasets with at least this many rows are split into hive partitions.
    partition_min_rows: int = 1_000_000
    row_group_size: int = 500_000

    def __post_init__(self) -> None:
        if self.compression not in _CODECS:
            raise ValueError(f"compression must be one of {sorted(_CODECS)}, got {self.compression!r}")
        if self.versions_kept < 1:
            raise ValueError(f"versions kept must be at least 1, got {self.versions_kept}")
        if self.min_cell < 0 or self.row_group_size < 1 or self.partition_min_rows < 1:
            raise ValueError("min_cell, row_group_size and partition_min_rows must be positive")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ExportOptions:
        values = {
            "exports_dir": settings.exports_dir,
            "min_cell": settings.min_cell,
            "versions_kept": settings.export_versions_kept,
            "compression": settings.export_compression,
        }
        return cls(**{**values, **overrides})


@dataclass
class _Plan:
    spec: DatasetSpec
    relation: str  # schema.table, for messages and the manifest
    relation_sql: str  # quoted
    columns: list[ExportColumn]
    doc: ModelDoc
    source_rows: int = 0
    partition_column: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    rows_suppressed: int | None = None
    min_cell: int | None = None

    @property
    def partition_key(self) -> str | None:
        return f"{self.partition_column}_partition" if self.partition_column else None

    @property
    def output_columns(self) -> list[tuple[str, str]]:
        """(name, DuckDB type) of the published files, in order."""
        cols = [(c.name, c.duckdb_type) for c in self.columns]
        if self.spec.suppression:
            cols.append((SUPPRESSED_COLUMN, "BOOLEAN"))
        return cols


@dataclass(frozen=True)
class PublishResult:
    version_id: str
    exports_dir: Path
    manifest: Mapping[str, Any]
    pruned: tuple[str, ...]
    # True when the warehouse held exactly what the current version holds: nothing was written
    unchanged: bool = False


def crash_point(name: str) -> None:
    """Test hook: ``GVW_TEST_CRASH_AT=<name>`` kills this process here with SIGKILL."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def publish_lock(exports_dir: Path) -> Iterator[None]:
    """One publisher at a time per exports folder (released by the OS if the process dies)."""
    exports_dir.mkdir(parents=True, exist_ok=True)
    with open(exports_dir / layout.LOCK_NAME, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --- recovery ---------------------------------------------------------------------------

def read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def recover(exports_dir: Path) -> list[str]:
    """Undo what a crashed publish left; returns what was done (for the logs). Call under the lock."""
    done: list[str] = []
    for sub in (layout.STAGING_DIR, layout.TRASH_DIR):
        root = exports_dir / sub
        if root.is_dir():
            for leftover in root.iterdir():
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
                done.append(f"removed {sub}/{leftover.name}")
    for tmp in exports_dir.glob(f".*{layout.TEMP_MARKER}*"):
        tmp.unlink(missing_ok=True)
        done.append(f"removed {tmp.name}")
    current = layout.current_version(exports_dir)
    top = read_manifest(exports_dir / layout.MANIFEST_NAME)
    if (current is None or not layout.version_dir(exports_dir, current).is_dir()) and top:
        # _current lost (removed by hand): the published manifest still names its version
        named = top.get("version_id")
        if named and layout.version_dir(exports_dir, named).is_dir():
            layout.atomic_symlink(exports_dir / layout.CURRENT_LINK, layout.version_relpath(named))
            current = named
            done.append(f"re-linked _current to {named}")
    # A version newer than the current one never became current: the publish died between
    # renaming it into _versions and flipping _current.
    for version in layout.list_versions(exports_dir):
        if current is None or version > current:
            _discard_version(exports_dir, version)
            done.append(f"removed unpublished version {version}")
    if current is None:
        return done
    version_manifest = read_manifest(layout.version_dir(exports_dir, current) / layout.MANIFEST_NAME)
    if version_manifest is not None and (top is None or top.get("version_id") != current):
        _write_top_level(exports_dir, version_manifest)
        done.append(f"restored manifest, dictionary and bi.duckdb of {current}")
    return done


def _discard_version(exports_dir: Path, version_id: str) -> None:
    """Move a version out of ``_versions`` in one rename, then delete it."""
    trash = exports_dir / layout.TRASH_DIR
    trash.mkdir(exist_ok=True)
    moved = trash / version_id
    os.replace(layout.version_dir(exports_dir, version_id), moved)
    shutil.rmtree(moved)


def _write_top_level(exports_dir: Path, manifest: Mapping[str, Any]) -> None:
    build_bi_database(exports_dir / layout.BI_DATABASE_NAME, manifest, exports_dir)
    layout.atomic_write_bytes(exports_dir / layout.DICTIONARY_NAME, render_dictionary(manifest).encode("utf-8"))
    # last: the manifest names a version only once everything it describes is in place
    layout.atomic_write_bytes(exports_dir / layout.MANIFEST_NAME, _manifest_bytes(manifest))


# --- planning ---------------------------------------------------------------------------

def _find_relation(conn: duckdb.DuckDBPyConnection, model: str, doc: ModelDoc) -> tuple[str, str]:
    schemas = [row[0] for row in conn.execute(
        "select table_schema from information_schema.tables "
        "where table_name = ? and table_catalog = current_database() order by table_schema",
        [model],
    ).fetchall()]
    if not schemas:
        raise ExportError(f"mart {model} is not in the warehouse: has `dbt build` run?")
    if len(schemas) > 1:
        if doc.schema not in schemas:
            raise ExportError(f"mart {model} exists in several schemas ({', '.join(schemas)}); the dbt manifest does not say which")
        schemas = [doc.schema]
    return f"{schemas[0]}.{model}", f"{quote_ident(schemas[0])}.{quote_ident(model)}"


def _plan(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, docs: DbtDocs) -> _Plan:
    doc = docs.model(spec.model)
    relation, relation_sql = _find_relation(conn, spec.model, doc)
    rel = conn.sql(f"select * from {relation_sql} limit 0")
    columns = []
    for name, dtype in zip(rel.columns, rel.types, strict=True):
        try:
            columns.append(export_column(name, dtype.id, str(dtype)))
        except UnsupportedTypeError as exc:
            raise ExportError(f"dataset {spec.name} ({relation}): {exc}") from exc
    names = [c.name for c in columns]
    forbidden = [n for n in names if re.search(FORBIDDEN_COLUMN_PATTERN, n, flags=re.IGNORECASE)]
    if forbidden:
        raise PrivacyError(
            f"dataset {spec.name} ({relation}) has identifier column(s) {', '.join(forbidden)}: "
            "exports carry pseudonymous keys only; drop the column from the mart"
        )
    if spec.suppression:
        s = spec.suppression
        missing = [c for c in (*s.count_columns, *s.derived_columns, s.scope_column) if c not in names]
        if missing:
            # a renamed count column must not silently switch suppression off
            raise PrivacyError(f"dataset {spec.name}: suppression needs column(s) {', '.join(missing)}, not in {relation}")
        if SUPPRESSED_COLUMN in names:
            raise ExportError(f"dataset {spec.name}: the mart already has a column named {SUPPRESSED_COLUMN}")
    return _Plan(spec=spec, relation=relation, relation_sql=relation_sql, columns=columns, doc=doc)


# --- staging ------------------------------------------------------------------------------

def _suppress_condition(plan: _Plan) -> str:
    s = plan.spec.suppression
    assert s is not None
    small = " or ".join(f"coalesce({quote_ident(c)}, 0) < $min_cell" for c in s.count_columns)
    return f"({quote_ident(s.scope_column)} is distinct from $global_scope and ({small}))"


def _copy_sql(plan: _Plan, target: Path, options: ExportOptions, version_id: str) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    hidden: set[str] = set()
    condition = None
    if plan.spec.suppression:
        s = plan.spec.suppression
        hidden = {*s.count_columns, *s.derived_columns}
        condition = _suppress_condition(plan)
        params = {"min_cell": options.min_cell, "global_scope": s.global_scope}
    exprs = []
    for column in plan.columns:
        value = value_expression(column)
        if column.name in hidden:
            value = f"case when {condition} then null else {value} end"
        exprs.append(f"{value} as {quote_ident(column.name)}")
    if condition:
        exprs.append(f"{condition} as {quote_ident(SUPPRESSED_COLUMN)}")
    copy_options = [
        "format parquet",
        f"compression {_CODECS[options.compression]}",
        f"row_group_size {int(options.row_group_size)}",
        "parquet_version v1",
    ]
    if plan.partition_column:
        key = quote_ident(plan.partition_key or "")
        exprs.append(f"coalesce(cast({quote_ident(plan.partition_column)} as varchar), '__null__') as {key}")
        copy_options += [f"partition_by ({key})", f"filename_pattern '{plan.spec.name}-{version_id}-{{i}}'"]
    # Sorted rows: a stable order, tighter row-group statistics, and much better compression
    # of the repeated keys (vote_choices at scale 10: 45 MB sorted, 79 MB not).
    order = " order by all"
    path_literal = "'" + str(target).replace("'", "''") + "'"
    sql = (
        f"copy (select {', '.join(exprs)} from {plan.relation_sql}{order}) "
        f"to {path_literal} ({', '.join(copy_options)})"
    )
    return sql, params


def _pick_partition_column(plan: _Plan, options: ExportOptions) -> str | None:
    if plan.source_rows < options.partition_min_rows:
        return None
    names = {c.name for c in plan.columns}
    for candidate in plan.spec.partition_candidates:
        if candidate in names and f"{candidate}_partition" not in names:
            return candidate
    return None


def _code_digest() -> str:
    """Changes to this package change what gets published: they count as new content."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _fingerprint(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan], options: ExportOptions,
                 docs: DbtDocs, ledger: dict[str, Any] | None) -> str:
    """What a version is made of: every mart's columns and rows (an order-independent hash),
    the docs, the load ledger, the options and the code. Equal fingerprints, equal exports."""
    digest = hashlib.sha256()

    def add(value: Any) -> None:
        digest.update(json.dumps(value, sort_keys=True, default=_json_default).encode("utf-8"))

    add({"code": _code_digest(), "format": MANIFEST_FORMAT_VERSION, "ledger": ledger,
         "options": {"min_cell": options.min_cell, "versions_kept": options.versions_kept,
                     "compression": options.compression, "partition_min_rows": options.partition_min_rows,
                     "row_group_size": options.row_group_size}})
    for plan in plans:
        count, rows_hash = conn.execute(
            f"select count(*), coalesce(sum(hash(t)::hugeint), 0) from {plan.relation_sql} t"
        ).fetchone()
        add({"dataset": plan.spec.name, "relation": plan.relation, "rows": count, "hash": str(rows_hash),
             "columns": [[c.name, c.source_type] for c in plan.columns],
             "doc": [plan.doc.description, plan.doc.grain, dict(plan.doc.columns)]})
    return digest.hexdigest()


def _current_is_intact(exports_dir: Path, previous: Mapping[str, Any] | None) -> bool:
    """The published version is the one ``_current`` names, with every file and top-level file in place."""
    if not previous or layout.current_version(exports_dir) != previous.get("version_id"):
        return False
    for name in (layout.BI_DATABASE_NAME, layout.DICTIONARY_NAME):
        if not (exports_dir / name).is_file():
            return False
    for dataset in previous.get("datasets", {}).values():
        for f in dataset.get("files", []):
            path = exports_dir / f["path"]
            if not path.is_file() or path.stat().st_size != f["bytes"]:
                return False
    return True


def _stage(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan], stage_dir: Path,
           options: ExportOptions, version_id: str) -> None:
    for index, plan in enumerate(plans):
        plan.source_rows = conn.execute(f"select count(*) from {plan.relation_sql}").fetchone()[0]
        plan.partition_column = _pick_partition_column(plan, options)
        dataset_dir = stage_dir / plan.spec.name
        if plan.partition_column:
            target = dataset_dir
        else:
            dataset_dir.mkdir(parents=True)
            target = dataset_dir / f"{plan.spec.name}-{version_id}.parquet"
        sql, params = _copy_sql(plan, target, options, version_id)
        conn.execute(sql, params)
        if index == 0:
            crash_point("during_stage")


# --- checks ---------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_dataset(conn: duckdb.DuckDBPyConnection, plan: _Plan, stage_dir: Path,
                   options: ExportOptions, version_id: str) -> None:
    name = plan.spec.name
    dataset_dir = stage_dir / name
    files = sorted(dataset_dir.rglob("*.parquet"))
    if not files:
        raise ExportError(f"dataset {name}: no Parquet file was written")
    expected = plan.output_columns
    expected_arrow = [(c.name, c.arrow_type) for c in plan.columns]
    if plan.spec.suppression:
        expected_arrow.append((SUPPRESSED_COLUMN, pa.bool_()))
    footer_rows = 0
    plan.files = []
    for path in files:
        parquet = pq.ParquetFile(path)
        got = [(f.name, f.type) for f in parquet.schema_arrow]
        if got != expected_arrow:
            raise ExportError(
                f"dataset {name}: {path.name} reads as {[(n, str(t)) for n, t in got]}, "
                f"expected {[(n, str(t)) for n, t in expected_arrow]}"
            )
        meta = parquet.metadata
        footer_rows += meta.num_rows
        rel = path.relative_to(stage_dir).as_posix()
        plan.files.append({
            "path": f"{layout.version_relpath(version_id)}/{rel}",
            "rows": meta.num_rows,
            "row_groups": meta.num_row_groups,
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
        })
    file_list = [str(p) for p in files]
    read_back = conn.execute(
        "select count(*) from read_parquet(?, hive_partitioning = false)", [file_list]
    ).fetchone()[0]
    if not (read_back == footer_rows == plan.source_rows):
        raise ExportError(
            f"dataset {name}: {plan.source_rows} rows in {plan.relation}, {read_back} read back from Parquet "
            f"({footer_rows} in the footers)"
        )
    described = [(r[0], r[1]) for r in conn.execute(
        "describe select * from read_parquet(?, hive_partitioning = false)", [file_list]
    ).fetchall()]
    if described != expected:
        raise ExportError(f"dataset {name}: DuckDB reads the files as {described}, expected {expected}")
    _check_no_email_values(conn, plan, file_list)
    if plan.spec.suppression:
        plan.rows_suppressed = _check_suppression(conn, plan, file_list, options)
        plan.min_cell = options.min_cell


def _check_no_email_values(conn: duckdb.DuckDBPyConnection, plan: _Plan, files: list[str]) -> None:
    strings = [c.name for c in plan.columns if c.export_type == "VARCHAR"]
    if not strings:
        return
    # A cheap pass finds the columns with an '@' at all; only those get the regular expression
    # (DuckDB evaluates both sides of an AND on whole vectors).
    counts = ", ".join(f"count(*) filter (where contains({quote_ident(c)}, '@'))" for c in strings)
    row = conn.execute(
        f"select {counts} from read_parquet($files, hive_partitioning = false)", {"files": files}
    ).fetchone()
    suspects = [c for c, n in zip(strings, row, strict=True) if n]
    if not suspects:
        return
    counts = ", ".join(f"count(*) filter (where regexp_matches({quote_ident(c)}, $pattern))" for c in suspects)
    row = conn.execute(
        f"select {counts} from read_parquet($files, hive_partitioning = false)",
        {"files": files, "pattern": EMAIL_VALUE_PATTERN},
    ).fetchone()
    leaking = [f"{c} ({n} values)" for c, n in zip(suspects, row, strict=True) if n]
    if leaking:
        raise PrivacyError(f"dataset {plan.spec.name}: e-mail addresses in column(s) {', '.join(leaking)}")


def _check_suppression(conn: duckdb.DuckDBPyConnection, plan: _Plan, files: list[str], options: ExportOptions) -> int:
    """Re-check the written file: no small count outside the global scope; returns rows suppressed."""
    s = plan.spec.suppression
    assert s is not None
    scope = quote_ident(s.scope_column)
    small = " or ".join(f"{quote_ident(c)} < $min_cell" for c in s.count_columns)
    shown = " or ".join(f"{quote_ident(c)} is not null" for c in (*s.count_columns, *s.derived_columns))
    leaks, global_suppressed, suppressed = conn.execute(
        f"""
        select
            count(*) filter (where {scope} is distinct from $global_scope and ({small})),
            count(*) filter (where {scope} = $global_scope and suppressed),
            count(*) filter (where suppressed and ({shown}))
        from read_parquet($files, hive_partitioning = false)
        """,
        {"files": files, "min_cell": options.min_cell, "global_scope": s.global_scope},
    ).fetchone()
    if leaks or global_suppressed or suppressed:
        raise PrivacyError(
            f"dataset {plan.spec.name}: suppression did not hold ({leaks} small cells shown, "
            f"{global_suppressed} global rows suppressed, {suppressed} suppressed rows with values)"
        )
    return conn.execute(
        "select count(*) from read_parquet($files, hive_partitioning = false) where suppressed",
        {"files": files},
    ).fetchone()[0]


# --- manifest -----------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # the raw layer stores UTC instants without a zone
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")


def _manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


def ledger_summary(conn: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """Files and records read per source, from ``raw.load_ledger`` (None when absent)."""
    exists = conn.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' "
        "and table_name = 'load_ledger' and table_catalog = current_database()"
    ).fetchone()[0]
    if not exists:
        return None
    rows = conn.execute(
        """
        select
            source,
            count(*) as files,
            count(*) filter (where file_status = 'loaded') as files_loaded,
            count(*) filter (where file_status <> 'loaded') as files_rejected,
            cast(coalesce(sum(records_read), 0) as bigint) as records_read,
            cast(coalesce(sum(size_bytes), 0) as bigint) as bytes,
            max(first_seen_at) as last_file_seen_at
        from raw.load_ledger
        group by source
        order by source
        """
    ).fetchall()
    return {
        source: {
            "files": files,
            "files_loaded": loaded,
            "files_rejected": rejected,
            "records_read": records,
            "bytes": size,
            "last_file_seen_at": last,
        }
        for source, files, loaded, rejected, records, size, last in rows
    }


def _dataset_entry(plan: _Plan) -> dict[str, Any]:
    spec, doc = plan.spec, plan.doc
    columns = [
        {
            "name": c.name,
            "type": c.duckdb_type,
            "arrow_type": str(c.arrow_type),
            "source_type": c.source_type,
            "description": doc.column_description(c.name),
        }
        for c in plan.columns
    ]
    if spec.suppression:
        columns.append({"name": SUPPRESSED_COLUMN, "type": "BOOLEAN", "arrow_type": "bool",
                        "source_type": None, "description": SUPPRESSED_DESCRIPTION})
    entry: dict[str, Any] = {
        "model": spec.model,
        "relation": plan.relation,
        "kind": spec.kind,
        "description": doc.description,
        "grain": doc.grain or spec.grain,
        "path": spec.name,
        "glob": f"{spec.name}/**/*.parquet",
        "rows": plan.source_rows,
        "bytes": sum(f["bytes"] for f in plan.files),
        "partitioning": None,
        "suppression": None,
        "columns": columns,
        "files": plan.files,
    }
    if plan.partition_column:
        entry["partitioning"] = {
            "style": "hive",
            "key": plan.partition_key,
            "source_column": plan.partition_column,
            "values": sorted({Path(f["path"]).parent.name.split("=", 1)[1] for f in plan.files}),
        }
    if spec.suppression:
        s = spec.suppression
        entry["suppression"] = {
            "min_cell": plan.min_cell,
            "count_columns": list(s.count_columns),
            "derived_columns": list(s.derived_columns),
            "scope_column": s.scope_column,
            "global_scope": s.global_scope,
            "rows_suppressed": plan.rows_suppressed,
        }
    return entry


def _new_version_id(run_id: str, now: datetime) -> str:
    tag = re.sub(r"[^a-z0-9]", "", run_id.lower())[:8] or "manual"
    return f"v{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S%f')}Z-{tag}"


# --- publish ----------------------------------------------------------------------------------------

def _check_dataset_links(exports_dir: Path, specs: Sequence[DatasetSpec]) -> None:
    for spec in specs:
        if spec.name in layout.RESERVED_NAMES:
            raise ExportError(f"dataset name {spec.name} is reserved in the exports folder")
        path = exports_dir / spec.name
        if path.exists() and not path.is_symlink():
            raise ExportError(
                f"{path} is a real folder or file, not the link to the current version: "
                "move it away (the exports folder is written only by this publisher)"
            )


def _link_datasets(exports_dir: Path, specs: Sequence[DatasetSpec]) -> None:
    for spec in specs:
        link = exports_dir / spec.name
        target = f"{layout.CURRENT_LINK}/{spec.name}"
        if not (link.is_symlink() and os.readlink(link) == target):
            layout.atomic_symlink(link, target)


def _prune(exports_dir: Path, versions_kept: int, current: str) -> list[str]:
    versions = layout.list_versions(exports_dir)
    keep = set(versions[-versions_kept:]) | {current}
    pruned = [v for v in versions if v not in keep]
    for version in pruned:
        _discard_version(exports_dir, version)
    return pruned


def _build_manifest(version_id: str, run_id: str, generated: datetime, options: ExportOptions, docs: DbtDocs,
                    ledger: dict[str, Any] | None, plans: Sequence[_Plan],
                    previous: Mapping[str, Any] | None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "manifest_format": MANIFEST_FORMAT_VERSION,
        "version_id": version_id,
        "run_id": run_id,
        "generated_at": _json_default(generated),
        "version_path": layout.version_relpath(version_id),
        "format": {
            "file_format": "parquet",
            "parquet_version": "1.0",
            "compression": options.compression,
            "row_group_size": options.row_group_size,
            "partition_min_rows": options.partition_min_rows,
            "versions_kept": options.versions_kept,
            "min_cell": options.min_cell,
            "timestamps": "TIMESTAMP WITH TIME ZONE (UTC, microseconds)",
        },
        "dbt": {
            "project_name": docs.project_name,
            "dbt_version": docs.dbt_version,
            "manifest_generated_at": docs.generated_at,
        },
        "load_ledger": ledger,
        "datasets": {plan.spec.name: _dataset_entry(plan) for plan in plans},
    }
    # against the version BI users have now: a removed column or a changed type breaks reports
    manifest["schema_changes"] = {
        "previous_version_id": previous.get("version_id") if previous else None,
        "datasets": manifest_schema_changes(previous, manifest),
    }
    return manifest


def _write_staged_version(conn: duckdb.DuckDBPyConnection, stage_dir: Path, options: ExportOptions,
                          datasets: Sequence[DatasetSpec], docs: DbtDocs, version_id: str,
                          published_fingerprint: str | None) -> tuple[list[_Plan], dict[str, Any] | None, str, bool]:
    """Plan, fingerprint, stage and check every dataset from one snapshot of the warehouse.

    Returns (plans, ledger, fingerprint, staged); nothing is staged when the fingerprint equals
    the published one. A refused version leaves no staging folder behind.
    """
    (zone,) = conn.execute("select current_setting('TimeZone')").fetchone()
    # naive warehouse timestamps are UTC instants: cast them to TIMESTAMPTZ as such
    conn.execute("set TimeZone = 'UTC'")
    try:
        plans = [_plan(conn, spec, docs) for spec in datasets]  # refuses before anything is written
        # One read transaction: every dataset and the fingerprint come from the same snapshot.
        conn.execute("begin transaction")
        try:
            ledger = ledger_summary(conn)
            fingerprint = _fingerprint(conn, plans, options, docs, ledger)
            if fingerprint == published_fingerprint:
                return plans, ledger, fingerprint, False
            stage_dir.mkdir(parents=True)
            try:
                _stage(conn, plans, stage_dir, options, version_id)
            except BaseException:
                shutil.rmtree(stage_dir, ignore_errors=True)
                raise
        finally:
            conn.execute("rollback")  # read-only work: nothing to commit
        try:
            for plan in plans:
                _check_dataset(conn, plan, stage_dir, options, version_id)
        except BaseException:
            shutil.rmtree(stage_dir, ignore_errors=True)
            raise
    finally:
        conn.execute("set TimeZone = ?", [zone])  # the caller's connection as it was
    return plans, ledger, fingerprint, True


def publish_exports(
    conn: duckdb.DuckDBPyConnection,
    options: ExportOptions,
    docs: DbtDocs,
    run_id: str,
    datasets: Sequence[DatasetSpec] = DATASETS,
    now: datetime | None = None,
) -> PublishResult:
    """Publish every dataset from the warehouse ``conn`` (read-only is enough) as one new version."""
    exports_dir = Path(options.exports_dir).resolve()
    with publish_lock(exports_dir):
        recover(exports_dir)
        _check_dataset_links(exports_dir, datasets)
        previous = read_manifest(exports_dir / layout.MANIFEST_NAME)
        generated = now or datetime.now(UTC)
        version_id = _new_version_id(run_id, generated)
        stage_dir = exports_dir / layout.STAGING_DIR / version_id
        final_dir = layout.version_dir(exports_dir, version_id)
        if final_dir.exists():
            raise ExportError(f"version {version_id} already exists")

        published = previous.get("fingerprint") if _current_is_intact(exports_dir, previous) else None
        plans, ledger, fingerprint, staged = _write_staged_version(
            conn, stage_dir, options, datasets, docs, version_id, published
        )
        if not staged:
            # the marts hold what is already published: keep that version, write nothing
            assert previous is not None
            return PublishResult(version_id=previous["version_id"], exports_dir=exports_dir, manifest=previous,
                                 pruned=(), unchanged=True)
        manifest = _build_manifest(version_id, run_id, generated, options, docs, ledger, plans, previous)
        manifest["fingerprint"] = fingerprint
        layout.atomic_write_bytes(stage_dir / layout.MANIFEST_NAME, _manifest_bytes(manifest))
        layout.atomic_write_bytes(stage_dir / layout.DICTIONARY_NAME, render_dictionary(manifest).encode("utf-8"))
        layout.fsync_tree(stage_dir)
        crash_point("after_stage")

        # complete but not yet visible
        final_dir.parent.mkdir(exist_ok=True)
        os.replace(stage_dir, final_dir)
        layout.fsync_dir(final_dir.parent)
        crash_point("after_version")

        # the commit point: every dataset link resolves through _current
        layout.atomic_symlink(exports_dir / layout.CURRENT_LINK, layout.version_relpath(version_id))
        _link_datasets(exports_dir, datasets)
        crash_point("after_swap")

        _write_top_level(exports_dir, manifest)
        crash_point("after_manifest")

        pruned = _prune(exports_dir, options.versions_kept, version_id)
    return PublishResult(version_id=version_id, exports_dir=exports_dir, manifest=manifest, pruned=tuple(pruned))
