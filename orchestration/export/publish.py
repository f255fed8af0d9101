"""Publish one consistent, versioned set of Parquet exports of the marts.

Order of a publish (under an exclusive lock on the exports folder):

1. recover: remove what a crashed publish left (staging, trash, a version that never
   became current) and, if the crash came between the flip and the manifest, bring the
   top-level files in line with ``_current``;
2. plan: find every mart, map its types, refuse identifier columns (nothing written yet);
3. in one read transaction of the warehouse (one snapshot): stop there, writing nothing,
   when the marts hold exactly what is published (a re-run without new data keeps its
   version). Two fingerprints tell: the *source state* (the warehouse file untouched since
   the published version was made from it, same code, options and docs: no data read at
   all), else the *content fingerprint* (one scan per mart: row count and an
   order-independent hash of its rows, which also finds the string columns holding an '@');
   else refuse e-mail addresses, then ``COPY ... TO`` Parquet, sorted, every dataset (one
   statement per file) into ``_staging/<version_id>/``; each file is hashed (SHA-256) and
   flushed to disk by a helper thread while the next one is written;
4. check: from the Parquet footers, with pyarrow and DuckDB, every file's schema and the
   row counts; re-check the suppression on the written file; write the version's manifest
   and dictionary, fsync;
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
# The hive folder of the rows whose partition column is null.
NULL_PARTITION = "__null__"
# Files are hashed in blocks this big (hashlib releases the GIL on each block).
_HASH_BLOCK = 8 << 20


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
    # Settings of the DuckDB connections the export opens itself (bi.duckdb):
    # ``Settings.duckdb_config()``. The warehouse connection is the caller's, opened with them.
    duckdb_config: Mapping[str, str | int] | None = field(default=None, compare=False)

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
            "duckdb_config": settings.duckdb_config(),
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
    # order-independent hash of the mart's rows (the content fingerprint)
    rows_hash: str = ""
    # string columns with an '@' somewhere (candidates for the e-mail check)
    at_columns: list[str] = field(default_factory=list)
    partition_column: str | None = None
    # values of the partition column, as the folder names hold them (null as NULL_PARTITION)
    partition_values: list[str] = field(default_factory=list)
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


def recover(exports_dir: Path, duckdb_config: Mapping[str, str | int] | None = None) -> list[str]:
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
        _write_top_level(exports_dir, version_manifest, duckdb_config)
        done.append(f"restored manifest, dictionary and bi.duckdb of {current}")
    return done


def _discard_version(exports_dir: Path, version_id: str) -> None:
    """Move a version out of ``_versions`` in one rename, then delete it."""
    trash = exports_dir / layout.TRASH_DIR
    trash.mkdir(exist_ok=True)
    moved = trash / version_id
    os.replace(layout.version_dir(exports_dir, version_id), moved)
    shutil.rmtree(moved)


def _write_top_level(exports_dir: Path, manifest: Mapping[str, Any],
                     duckdb_config: Mapping[str, str | int] | None = None) -> None:
    build_bi_database(exports_dir / layout.BI_DATABASE_NAME, manifest, exports_dir, duckdb_config)
    layout.atomic_write_bytes(exports_dir / layout.DICTIONARY_NAME, render_dictionary(manifest).encode("utf-8"))
    # last: the manifest names a version only once everything it describes is in place
    layout.atomic_write_bytes(exports_dir / layout.MANIFEST_NAME, _manifest_bytes(manifest))


# --- planning ---------------------------------------------------------------------------

def _find_relations(conn: duckdb.DuckDBPyConnection, specs: Sequence[DatasetSpec],
                    docs: DbtDocs) -> dict[str, tuple[str, str]]:
    """model -> (schema.table, quoted), from one catalog query (information_schema is slow)."""
    found: dict[str, list[str]] = {spec.model: [] for spec in specs}
    for schema, name in conn.execute(
        """
        select schema_name, table_name from duckdb_tables() where database_name = current_database()
        union all
        select schema_name, view_name from duckdb_views() where database_name = current_database() and not internal
        order by 1
        """
    ).fetchall():
        if name in found:
            found[name].append(schema)
    relations = {}
    for model, schemas in found.items():
        if not schemas:
            raise ExportError(f"mart {model} is not in the warehouse: has `dbt build` run?")
        if len(schemas) > 1:
            doc = docs.model(model)
            if doc.schema not in schemas:
                raise ExportError(
                    f"mart {model} exists in several schemas ({', '.join(schemas)}); the dbt manifest does not say which"
                )
            schemas = [doc.schema]
        relations[model] = (f"{schemas[0]}.{model}", f"{quote_ident(schemas[0])}.{quote_ident(model)}")
    return relations


def _plan(conn: duckdb.DuckDBPyConnection, spec: DatasetSpec, docs: DbtDocs, relation: tuple[str, str]) -> _Plan:
    doc = docs.model(spec.model)
    relation_name, relation_sql = relation
    rel = conn.sql(f"select * from {relation_sql} limit 0")
    columns = []
    for name, dtype in zip(rel.columns, rel.types, strict=True):
        try:
            columns.append(export_column(name, dtype.id, str(dtype)))
        except UnsupportedTypeError as exc:
            raise ExportError(f"dataset {spec.name} ({relation_name}): {exc}") from exc
    names = [c.name for c in columns]
    forbidden = [n for n in names if re.search(FORBIDDEN_COLUMN_PATTERN, n, flags=re.IGNORECASE)]
    if forbidden:
        raise PrivacyError(
            f"dataset {spec.name} ({relation_name}) has identifier column(s) {', '.join(forbidden)}: "
            "exports carry pseudonymous keys only; drop the column from the mart"
        )
    if spec.suppression:
        s = spec.suppression
        missing = [c for c in (*s.count_columns, *s.derived_columns, s.scope_column) if c not in names]
        if missing:
            # a renamed count column must not silently switch suppression off
            raise PrivacyError(
                f"dataset {spec.name}: suppression needs column(s) {', '.join(missing)}, not in {relation_name}"
            )
        if SUPPRESSED_COLUMN in names:
            raise ExportError(f"dataset {spec.name}: the mart already has a column named {SUPPRESSED_COLUMN}")
    return _Plan(spec=spec, relation=relation_name, relation_sql=relation_sql, columns=columns, doc=doc)


def _plans(conn: duckdb.DuckDBPyConnection, specs: Sequence[DatasetSpec], docs: DbtDocs) -> list[_Plan]:
    relations = _find_relations(conn, specs, docs)
    return [_plan(conn, spec, docs, relations[spec.model]) for spec in specs]


def _pick_partition_column(plan: _Plan, options: ExportOptions) -> str | None:
    if plan.source_rows < options.partition_min_rows:
        return None
    names = {c.name for c in plan.columns}
    for candidate in plan.spec.partition_candidates:
        if candidate in names and f"{candidate}_partition" not in names:
            return candidate
    return None


# --- fingerprints -------------------------------------------------------------------------

def _code_digest() -> str:
    """Changes to this package change what gets published: they count as new content."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _digest(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=_json_default).encode("utf-8"))
    return digest.hexdigest()


def _inputs(plans: Sequence[_Plan], options: ExportOptions) -> dict[str, Any]:
    """What a version is made of besides the rows: code, options, each mart's columns and docs."""
    return {
        "code": _code_digest(),
        "format": MANIFEST_FORMAT_VERSION,
        "options": {"min_cell": options.min_cell, "versions_kept": options.versions_kept,
                    "compression": options.compression, "partition_min_rows": options.partition_min_rows,
                    "row_group_size": options.row_group_size},
        "datasets": [
            {"dataset": plan.spec.name, "spec": repr(plan.spec), "relation": plan.relation,
             "columns": [[c.name, c.source_type] for c in plan.columns],
             "doc": [plan.doc.description, plan.doc.grain, dict(plan.doc.columns)]}
            for plan in plans
        ],
    }


def _warehouse_file_state(conn: duckdb.DuckDBPyConnection) -> list[Any] | None:
    """Identity and last change of the warehouse file and its WAL, or None (in-memory database).

    DuckDB changes the file or its WAL on every committed write and on nothing else (not on
    a read, nor on opening and closing a connection); while this read-only connection is
    open no other process can write. Equal states, equal contents.
    """
    row = conn.execute("select path from duckdb_databases() where database_name = current_database()").fetchone()
    path = row[0] if row else None
    if not path or path == ":memory:":
        return None
    state: list[Any] = [os.path.abspath(path)]
    for name in (path, f"{path}.wal"):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            state.append(None)
            continue
        state.append([st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
    return state if state[1] is not None else None


def _source_state(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan], options: ExportOptions) -> str | None:
    """The cheap fingerprint: the published inputs and the warehouse file's state, no data read."""
    file_state = _warehouse_file_state(conn)
    return None if file_state is None else _digest(_inputs(plans, options), file_state)


def _scan_marts(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan], options: ExportOptions) -> None:
    """One pass over each mart: row count, an order-independent hash of its rows, which string
    columns hold an '@', and the values of its partition column."""
    for plan in plans:
        # a table's row count comes from its metadata: the partitioning is known before the scan
        plan.source_rows = conn.execute(f"select count(*) from {plan.relation_sql}").fetchone()[0]
        plan.partition_column = _pick_partition_column(plan, options)
        strings = [c for c in plan.columns if c.export_type == "VARCHAR"]
        # hash(a, b, ...) equals hash of the row struct, without building the struct
        aggregates = [
            "count(*)",
            f"coalesce(sum(hash({', '.join(quote_ident(c.name) for c in plan.columns)})::hugeint), 0)",
        ]
        # a cheap test: the regular expression runs later on the columns it flags, if any
        aggregates += [f"count(*) filter (where contains({value_expression(c)}, '@'))" for c in strings]
        if plan.partition_column:
            aggregates.append(f"list(distinct {_partition_value_sql(plan.partition_column)})")
        row = conn.execute(f"select {', '.join(aggregates)} from {plan.relation_sql}").fetchone()
        plan.source_rows, plan.rows_hash = row[0], str(row[1])
        at_counts = row[2:2 + len(strings)]
        plan.at_columns = [c.name for c, n in zip(strings, at_counts, strict=True) if n]
        if plan.partition_column:
            plan.partition_values = sorted(row[-1])


def _fingerprint(plans: Sequence[_Plan], options: ExportOptions, ledger: dict[str, Any] | None) -> str:
    """The content fingerprint: every mart's rows (count and order-independent hash), columns
    and docs, the load ledger, the options and the code. Equal fingerprints, equal exports."""
    return _digest(
        _inputs(plans, options), ledger,
        [{"dataset": plan.spec.name, "rows": plan.source_rows, "hash": plan.rows_hash} for plan in plans],
    )


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


# --- privacy --------------------------------------------------------------------------------

def _check_no_email_values(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan]) -> None:
    """Refuse e-mail addresses in any string value, before anything is written.

    Checked on the marts, in the snapshot the files are written from: the files hold these
    values as they are (strings are not transformed). Only the columns where the scan found
    an '@' get the regular expression.
    """
    for plan in plans:
        if not plan.at_columns:
            continue
        suspects = [c for c in plan.columns if c.name in plan.at_columns]
        counts = ", ".join(
            f"count(*) filter (where regexp_matches({value_expression(c)}, $pattern))" for c in suspects
        )
        row = conn.execute(
            f"select {counts} from {plan.relation_sql}", {"pattern": EMAIL_VALUE_PATTERN}
        ).fetchone()
        leaking = [f"{c.name} ({n} values)" for c, n in zip(suspects, row, strict=True) if n]
        if leaking:
            raise PrivacyError(f"dataset {plan.spec.name}: e-mail addresses in column(s) {', '.join(leaking)}")


# --- staging ------------------------------------------------------------------------------

def _partition_value_sql(column: str) -> str:
    """The hive folder value of a row (as DuckDB's ``partition_by`` writes it)."""
    return f"coalesce(cast({quote_ident(column)} as varchar), '{NULL_PARTITION}')"


def _partition_filter(plan: _Plan, value: str) -> str:
    """Rows of one partition, as a filter DuckDB pushes into the scan (zone maps skip the rest)."""
    assert plan.partition_column is not None
    column = next(c for c in plan.columns if c.name == plan.partition_column)
    ident = quote_ident(column.name)
    text = ident if column.source_type.upper() == "VARCHAR" else f"cast({ident} as varchar)"
    if value == NULL_PARTITION:
        return f"({ident} is null or {text} = $partition_value)"
    return f"{text} = $partition_value"


def partition_folder(key: str, value: str) -> str:
    """``<key>=<value>``, percent-encoded like DuckDB's hive partitioning (readers decode it)."""
    return f"{quote(key, safe='')}={quote(value, safe='')}"


def _suppress_condition(plan: _Plan) -> str:
    s = plan.spec.suppression
    assert s is not None
    small = " or ".join(f"coalesce({quote_ident(c)}, 0) < $min_cell" for c in s.count_columns)
    return f"({quote_ident(s.scope_column)} is distinct from $global_scope and ({small}))"


def _copy_sql(plan: _Plan, target: Path, options: ExportOptions,
              partition_value: str | None = None) -> tuple[str, dict[str, Any]]:
    """One ``COPY`` writing one sorted file: the whole dataset, or one of its partitions."""
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
    where = ""
    constant = None  # position of a column that holds one value in this file: no sort key needed
    if partition_value is not None:
        where = f" where {_partition_filter(plan, partition_value)}"
        params["partition_value"] = partition_value
        column = next(c for c in plan.columns if c.name == plan.partition_column)
        if (partition_value != NULL_PARTITION and column.source_type.upper() == "VARCHAR"
                and column.name not in hidden):
            constant = plan.columns.index(column) + 1
    copy_options = [
        "format parquet",
        f"compression {_CODECS[options.compression]}",
        f"row_group_size {int(options.row_group_size)}",
        "parquet_version v1",
    ]
    # Sorted rows (every column, in order; the partition column is constant in its file): a
    # stable order, tighter row-group statistics, and much better compression of the repeated
    # keys (vote_choices at scale 10: 45 MB sorted, 79 MB not). One statement per file, so every
    # file is sorted as a whole (DuckDB's partitioned writer interleaves its threads' sorted runs).
    keys = [f"{i} asc nulls last" for i in range(1, len(exprs) + 1) if i != constant]
    order = f" order by {', '.join(keys)}" if keys else ""
    path_literal = "'" + str(target).replace("'", "''") + "'"
    sql = (
        f"copy (select {', '.join(exprs)} from {plan.relation_sql}{where}{order}) "
        f"to {path_literal} ({', '.join(copy_options)})"
    )
    return sql, params


def _hash_and_sync(path: Path) -> str:
    """SHA-256 of a written file, which is then flushed to disk (one read of the file)."""
    digest = hashlib.sha256()
    buffer = bytearray(_HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buffer):
            digest.update(view[:n])
        os.fsync(fh.fileno())
    return digest.hexdigest()


def _stage(conn: duckdb.DuckDBPyConnection, plans: Sequence[_Plan], stage_dir: Path, options: ExportOptions,
           version_id: str, hasher: ThreadPoolExecutor) -> dict[Path, Future[str]]:
    """Write every dataset's files; each file's hash is computed by ``hasher`` meanwhile."""
    hashes: dict[Path, Future[str]] = {}
    for index, plan in enumerate(plans):
        dataset_dir = stage_dir / plan.spec.name
        dataset_dir.mkdir(parents=True)
        if plan.partition_column:
            targets = []
            for value in plan.partition_values:
                folder = dataset_dir / partition_folder(plan.partition_key or "", value)
                folder.mkdir()
                targets.append((folder / f"{plan.spec.name}-{version_id}-0.parquet", value))
        else:
            targets = [(dataset_dir / f"{plan.spec.name}-{version_id}.parquet", None)]
        for target, value in targets:
            sql, params = _copy_sql(plan, target, options, value)
            conn.execute(sql, params)
            hashes[target] = hasher.submit(_hash_and_sync, target)
        if index == 0:
            crash_point("during_stage")
    return hashes


# --- checks ---------------------------------------------------------------------------------

def _check_dataset(conn: duckdb.DuckDBPyConnection, plan: _Plan, stage_dir: Path, options: ExportOptions,
                   version_id: str, hashes: Mapping[Path, Future[str]]) -> None:
    """Row counts and schema of the written files from their footers (pyarrow and DuckDB), their
    hashes, and the suppression re-checked on the file."""
    name = plan.spec.name
    dataset_dir = stage_dir / name
    files = sorted(dataset_dir.rglob("*.parquet"))
    if not files:
        raise ExportError(f"dataset {name}: no Parquet file was written")
    unexpected = [p.name for p in files if p not in hashes]
    if unexpected:
        raise ExportError(f"dataset {name}: unexpected file(s) {', '.join(unexpected)}")
    expected = plan.output_columns
    expected_arrow = [(c.name, c.arrow_type) for c in plan.columns]
    if plan.spec.suppression:
        expected_arrow.append((SUPPRESSED_COLUMN, pa.bool_()))
    footer_rows = 0
    plan.files = []
    for path in files:
        parquet = pq.ParquetFile(path)  # reads the footer only
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
            "sha256": hashes[path].result(),
        })
    file_list = [str(p) for p in files]
    # DuckDB's own reading of the footers: row counts and column types
    (duckdb_rows,) = conn.execute(
        "select coalesce(sum(num_rows), 0) from parquet_file_metadata($files)", {"files": file_list}
    ).fetchone()
    if not (duckdb_rows == footer_rows == plan.source_rows):
        raise ExportError(
            f"dataset {name}: {plan.source_rows} rows in {plan.relation}, {duckdb_rows} in the Parquet footers "
            f"read by DuckDB, {footer_rows} read by pyarrow"
        )
    described = [(r[0], r[1]) for r in conn.execute(
        "describe select * from read_parquet($files, hive_partitioning = false)", {"files": file_list}
    ).fetchall()]
    if described != expected:
        raise ExportError(f"dataset {name}: DuckDB reads the files as {described}, expected {expected}")
    if plan.spec.suppression:
        plan.rows_suppressed = _check_suppression(conn, plan, file_list, options)
        plan.min_cell = options.min_cell


def _check_suppression(conn: duckdb.DuckDBPyConnection, plan: _Plan, files: list[str], options: ExportOptions) -> int:
    """Re-check the written file: no small count outside the global scope; returns rows suppressed."""
    s = plan.spec.suppression
    assert s is not None
    scope = quote_ident(s.scope_column)
    small = " or ".join(f"{quote_ident(c)} < $min_cell" for c in s.count_columns)
    shown = " or ".join(f"{quote_ident(c)} is not null" for c in (*s.count_columns, *s.derived_columns))
    leaks, global_suppressed, suppressed, rows_suppressed = conn.execute(
        f"""
        select
            count(*) filter (where {scope} is distinct from $global_scope and ({small})),
            count(*) filter (where {scope} = $global_scope and suppressed),
            count(*) filter (where suppressed and ({shown})),
            count(*) filter (where suppressed)
        from read_parquet($files, hive_partitioning = false)
        """,
        {"files": files, "min_cell": options.min_cell, "global_scope": s.global_scope},
    ).fetchone()
    if leaks or global_suppressed or suppressed:
        raise PrivacyError(
            f"dataset {plan.spec.name}: suppression did not hold ({leaks} small cells shown, "
            f"{global_suppressed} global rows suppressed, {suppressed} suppressed rows with values)"
        )
    return rows_suppressed


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
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'raw' and table_name = 'load_ledger'"
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
                          published: Mapping[str, Any] | None) -> tuple[list[_Plan], dict[str, Any] | None, str, str | None, bool]:
    """Plan, fingerprint, stage and check every dataset from one snapshot of the warehouse.

    Returns (plans, ledger, fingerprint, source state, staged); nothing is staged when the
    marts hold what ``published`` (the intact current version's manifest) holds. A refused
    version leaves no staging folder behind.
    """
    published = published or {}
    plans = _plans(conn, datasets, docs)  # refuses before anything is written
    # Taken before the snapshot: a write committed in between makes the state differ (never
    # the other way round), so a matching state always means the published content.
    state = _source_state(conn, plans, options)
    if state is not None and state == published.get("source_state"):
        # the warehouse file has not changed since the published version was made from it
        return plans, None, published["fingerprint"], state, False
    (zone,) = conn.execute("select current_setting('TimeZone')").fetchone()
    # naive warehouse timestamps are UTC instants: cast them to TIMESTAMPTZ as such
    conn.execute("set TimeZone = 'UTC'")
    try:
        # One read transaction: every dataset and the fingerprint come from the same snapshot.
        conn.execute("begin transaction")
        try:
            ledger = ledger_summary(conn)
            _scan_marts(conn, plans, options)
            fingerprint = _fingerprint(plans, options, ledger)
            if fingerprint == published.get("fingerprint"):
                return plans, ledger, fingerprint, state, False
            _check_no_email_values(conn, plans)
            stage_dir.mkdir(parents=True)
            try:
                # one helper thread hashes (and flushes) each file while DuckDB writes the next
                with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-hash") as hasher:
                    hashes = _stage(conn, plans, stage_dir, options, version_id, hasher)
                    for plan in plans:
                        _check_dataset(conn, plan, stage_dir, options, version_id, hashes)
            except BaseException:
                shutil.rmtree(stage_dir, ignore_errors=True)
                raise
        finally:
            conn.execute("rollback")  # read-only work: nothing to commit
    finally:
        conn.execute("set TimeZone = ?", [zone])  # the caller's connection as it was
    return plans, ledger, fingerprint, state, True


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
        recover(exports_dir, options.duckdb_config)
        _check_dataset_links(exports_dir, datasets)
        previous = read_manifest(exports_dir / layout.MANIFEST_NAME)
        generated = now or datetime.now(UTC)
        version_id = _new_version_id(run_id, generated)
        stage_dir = exports_dir / layout.STAGING_DIR / version_id
        final_dir = layout.version_dir(exports_dir, version_id)
        if final_dir.exists():
            raise ExportError(f"version {version_id} already exists")

        published = previous if _current_is_intact(exports_dir, previous) else None
        plans, ledger, fingerprint, state, staged = _write_staged_version(
            conn, stage_dir, options, datasets, docs, version_id, published
        )
        if not staged:
            # the marts hold what is already published: keep that version, write nothing
            assert previous is not None
            return PublishResult(version_id=previous["version_id"], exports_dir=exports_dir, manifest=previous,
                                 pruned=(), unchanged=True)
        manifest = _build_manifest(version_id, run_id, generated, options, docs, ledger, plans, previous)
        manifest["fingerprint"] = fingerprint
        # the warehouse file's state this version was made from: a re-run finds it unchanged without a scan
        manifest["source_state"] = state
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

        _write_top_level(exports_dir, manifest, options.duckdb_config)
        crash_point("after_manifest")

        pruned = _prune(exports_dir, options.versions_kept, version_id)
    return PublishResult(version_id=version_id, exports_dir=exports_dir, manifest=manifest, pruned=tuple(pruned))
