"""Mart column types -> types every Parquet reader accepts.

Power BI, Tableau (through DuckDB), Superset, Metabase, Evidence, DuckDB, pandas, polars
and Spark all read: INT32, INT64, DOUBLE, BOOLEAN, DATE, UTF-8 strings and timestamps in
microseconds adjusted to UTC. Everything else is converted to one of those, or refused
when no lossless, unsurprising conversion exists (intervals, nested types, blobs).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


class UnsupportedTypeError(ValueError):
    """A mart column whose type cannot be published."""


# DuckDB type id -> the export type. The session time zone is UTC when these casts run,
# so a naive TIMESTAMP (the warehouse stores UTC instants without a zone) keeps its instant.
_CASTS: dict[str, str] = {
    "boolean": "BOOLEAN",
    "tinyint": "INTEGER",
    "smallint": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "utinyint": "INTEGER",
    "usmallint": "INTEGER",
    "uinteger": "BIGINT",
    # a value beyond BIGINT fails the cast, and with it the publish: never wraps silently
    "ubigint": "BIGINT",
    "hugeint": "BIGINT",
    "uhugeint": "BIGINT",
    "float": "DOUBLE",
    "double": "DOUBLE",
    "decimal": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "timestamp_s": "TIMESTAMPTZ",
    "timestamp_ms": "TIMESTAMPTZ",
    "timestamp_ns": "TIMESTAMPTZ",
    "timestamp with time zone": "TIMESTAMPTZ",
    "varchar": "VARCHAR",
    "enum": "VARCHAR",
    "uuid": "VARCHAR",
}

# The export type -> how DuckDB describes it when reading the Parquet back, and the
# Arrow type pyarrow / pandas / polars read.
EXPORT_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "BOOLEAN": ("BOOLEAN", pa.bool_()),
    "INTEGER": ("INTEGER", pa.int32()),
    "BIGINT": ("BIGINT", pa.int64()),
    "DOUBLE": ("DOUBLE", pa.float64()),
    "DATE": ("DATE", pa.date32()),
    "TIMESTAMPTZ": ("TIMESTAMP WITH TIME ZONE", pa.timestamp("us", tz="UTC")),
    "VARCHAR": ("VARCHAR", pa.string()),
}


@dataclass(frozen=True)
class ExportColumn:
    name: str
    source_type: str  # as the warehouse declares it
    export_type: str  # a key of EXPORT_TYPES

    @property
    def duckdb_type(self) -> str:
        return EXPORT_TYPES[self.export_type][0]

    @property
    def arrow_type(self) -> pa.DataType:
        return EXPORT_TYPES[self.export_type][1]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_column(name: str, type_id: str, type_text: str) -> ExportColumn:
    """The export type of a column, from its DuckDB type id (``DuckDBPyType.id``)."""
    if type_text.upper() == "JSON":  # JSON is a VARCHAR alias in DuckDB
        type_id = "varchar"
    export_type = _CASTS.get(type_id)
    if export_type is None:
        raise UnsupportedTypeError(
            f"column {name!r} has type {type_text}, which BI readers do not share; "
            "give the mart column a plain type (integer, bigint, double, boolean, date, timestamp, varchar)"
        )
    return ExportColumn(name=name, source_type=type_text, export_type=export_type)


def value_expression(column: ExportColumn) -> str:
    """SQL that turns the mart column into its export type (no alias)."""
    ident = quote_ident(column.name)
    source = column.source_type.upper()
    if source == column.duckdb_type:  # already the export type
        return ident
    if column.export_type == "TIMESTAMPTZ" and source.startswith("TIMESTAMP_NS"):
        # nanoseconds -> microseconds first; Parquet readers disagree on nanoseconds
        return f"cast(cast({ident} as timestamp) as timestamptz)"
    return f"cast({ident} as {column.export_type})"
