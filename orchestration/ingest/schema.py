"""The ``raw`` schema: DDL of the five raw tables (docs/raw-layer.md), created idempotently."""

from __future__ import annotations

import duckdb

RAW_TABLES = ("load_ledger", "votes", "vote_quarantine", "workshop_events", "workshop_quarantine")

# Outcomes and reason codes, in the contract's order of precedence.
VOTE_REASONS = (
    "malformed_row", "missing_required", "test_submission", "invalid_timestamp",
    "outside_voting_window", "unknown_code", "invalid_experience", "invalid_choice",
)
VOTE_FILE_REASONS = ("missing_column",)
WORKSHOP_REASONS = (
    "malformed_json", "missing_required", "unknown_event_type", "invalid_timestamp",
    "unknown_code", "invalid_experience", "invalid_choice", "invalid_date",
)
VOTE_OUTCOMES = ("accepted", "duplicate", "superseded")
WORKSHOP_OUTCOMES = ("accepted", "duplicate", "superseded", "incomplete_workshop")

# file_status values of the load ledger.
STATUS_LOADED = "loaded"
STATUS_MISSING_COLUMN = "missing_column"
STATUS_NOT_UTF8 = "not_utf8"
# DuckDB's CSV reader gave up on the file even in lenient mode: every non-blank physical
# line after the header is quarantined as malformed_row (never seen with real exports).
STATUS_UNREADABLE = "unreadable"

_DDL = """
create schema if not exists raw;

create table if not exists raw.load_ledger (
    sha256 varchar primary key,
    source varchar not null,
    file_name varchar not null,
    delivery_seq integer not null,
    size_bytes bigint not null,
    first_seen_at timestamp not null,
    run_id varchar,
    records_read bigint not null,
    file_status varchar not null,
    extra_columns varchar not null,
    message varchar not null
);

create table if not exists raw.votes (
    sha256 varchar not null,
    file_name varchar not null,
    record_number integer not null,
    response_id varchar not null,
    submitted_at timestamp not null,
    language varchar not null,
    country varchar not null,
    library_type varchar not null,
    years_experience integer not null,
    age_group varchar not null,
    respondent_key varchar,
    q1 varchar not null,
    q2 varchar not null,
    q3 varchar not null,
    q4 varchar not null,
    q5 varchar not null,
    q6 varchar not null,
    outcome varchar
);

create table if not exists raw.vote_quarantine (
    sha256 varchar not null,
    file_name varchar not null,
    record_number integer not null,
    reason varchar not null,
    detail varchar not null,
    record_text varchar not null,
    response_id varchar
);

create table if not exists raw.workshop_events (
    sha256 varchar not null,
    file_name varchar not null,
    line_number integer not null,
    event_id varchar not null,
    event_type varchar not null,
    workshop_id varchar not null,
    occurred_at timestamp not null,
    kind varchar,
    title varchar,
    held_on date,
    country varchar,
    city varchar,
    language varchar,
    participant_ref varchar,
    library_type varchar,
    years_experience integer,
    age_group varchar,
    question varchar,
    rank integer,
    option_code varchar,
    reported_participants integer,
    outcome varchar
);

create table if not exists raw.workshop_quarantine (
    sha256 varchar not null,
    file_name varchar not null,
    line_number integer not null,
    reason varchar not null,
    detail varchar not null,
    record_text varchar not null,
    event_id varchar,
    workshop_id varchar
);
"""


def raw_schema_exists(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether all five raw tables exist (a catalog read: no write, no lock upgrade)."""
    names = ", ".join(f"'{t}'" for t in RAW_TABLES)  # our constants
    found = conn.execute(
        "select count(*) from duckdb_tables() where database_name = current_database()"
        f" and schema_name = 'raw' and table_name in ({names})"
    ).fetchone()[0]
    return found == len(RAW_TABLES)


def ensure_raw_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ``raw`` schema and its tables when missing; never touches existing ones.

    The catalog is read first so that a run with nothing to do writes nothing at all.
    """
    if raw_schema_exists(conn):
        return
    conn.execute("begin transaction")
    try:
        conn.execute(_DDL)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
