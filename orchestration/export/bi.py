"""``exports/bi.duckdb``: a small DuckDB database of views over the published Parquet files.

BI tools (Metabase, Superset, DBeaver, Evidence, Tableau through the DuckDB driver) open it
read-only while pipelines run. DuckDB resolves a relative path in ``read_parquet`` against
the *process* working directory, not the database file, so the views hold absolute paths:
the exports folder's stable dataset links (``<exports>/<dataset>/**/*.parquet``), which
follow every new version without the database changing. The file is rebuilt on every
publish (a new dataset, column comments, a moved data directory) under a temp name and
``os.replace``-d into place; a BI tool holding the old file open keeps a valid database.
DuckDB binds a view's files when it is created, so the paths are those the pipeline sees:
a BI tool in a container must mount the exports folder at the same absolute path.

Written with storage compatibility v1.0.0, so any DuckDB 1.x client can open it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from orchestration.export.layout import fsync_dir, fsync_file, temp_path
from orchestration.export.typemap import quote_ident

STORAGE_COMPATIBILITY = "v1.0.0"
INFO_TABLE = "export_info"


def sql_literal(text: str) -> str:
    """A SQL string literal (for DDL, where DuckDB takes no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def view_sql(dataset: str, exports_dir: Path) -> str:
    glob = (exports_dir / dataset).as_posix() + "/**/*.parquet"
    # every file holds every column: hive folders only split big datasets, and reading them
    # as columns would add a partition key that is not a mart column
    return (
        f"create view {quote_ident(dataset)} as "
        f"select * from read_parquet({sql_literal(glob)}, hive_partitioning = false)"
    )


def build_bi_database(target: Path, manifest: Mapping[str, Any], exports_dir: Path,
                      duckdb_config: Mapping[str, str | int] | None = None) -> None:
    """Write the BI database for ``manifest`` to ``target`` atomically.

    ``duckdb_config`` (``Settings.duckdb_config()``: memory limit, spill folder, threads) applies
    to the connection that writes it; it is not stored in the file.
    """
    tmp = temp_path(target)
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    config: dict[str, str | int] = {**(duckdb_config or {}), "storage_compatibility_version": STORAGE_COMPATIBILITY}
    if "temp_directory" in config:
        Path(str(config["temp_directory"])).mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(tmp), config=config)
    try:
        # one transaction: the views and comments are committed (and checkpointed) once
        conn.execute("begin transaction")
        for name, dataset in manifest["datasets"].items():
            conn.execute(view_sql(name, exports_dir))
            comment = dataset.get("description") or dataset.get("grain") or ""
            if comment:
                conn.execute(f"comment on view {quote_ident(name)} is {sql_literal(comment)}")
            for column in dataset["columns"]:
                if column.get("description"):
                    conn.execute(
                        f"comment on column {quote_ident(name)}.{quote_ident(column['name'])} "
                        f"is {sql_literal(column['description'])}"
                    )
        conn.execute(
            f"create table {INFO_TABLE} (dataset varchar, source_model varchar, grain varchar, "
            "row_count bigint, version_id varchar, generated_at timestamptz)"
        )
        conn.executemany(
            f"insert into {INFO_TABLE} values (?, ?, ?, ?, ?, cast(? as timestamptz))",
            [
                [name, d["model"], d.get("grain"), d["rows"], manifest["version_id"], manifest["generated_at"]]
                for name, d in manifest["datasets"].items()
            ],
        )
        conn.execute(
            f"comment on table {INFO_TABLE} is "
            + sql_literal("The export version this database was built with; the views always read the current version.")
        )
        conn.execute("commit")
        conn.execute("checkpoint")
    finally:
        conn.close()
    wal = tmp.with_name(tmp.name + ".wal")
    if wal.exists():  # checkpoint emptied it; an empty WAL must not travel with the file
        wal.unlink()
    fsync_file(tmp)
    # A WAL beside the final name would be replayed into the new file: never leave one.
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    os.replace(tmp, target)
    fsync_dir(target.parent)
