"""Hand-made raw-layer tables for the dbt tests (docs/raw-layer.md, exactly).

``create_raw_tables`` builds the five ``raw`` tables empty; ``load_tiny_dataset`` fills
them with a small landing zone whose outcomes were worked out by hand from the contract
(the ingestion engineer's code is not used here). The figures it should produce are
derived, with the reasoning, in tests/test_dbt_build.py.

Files of the tiny landing zone (``records_read`` = rows across the two tables per file):

votes/export_2017-09-01.csv (6 records)
    1 R1 accepted          2 R2 accepted         3 T1 test_submission
    4 R3 accepted          5 R4 (older) superseded  6 R9 invalid_choice
votes/export_2017-10-01.csv (4 records)
    1 R1 copy duplicate    2 R4 (newer) accepted  3 R5 accepted   4 malformed_row
votes/export_broken.csv (2 records, no `country` column)
    1, 2 missing_column
workshops/log_2017-05.jsonl (9 lines)
    W1 registered, check-ins p1 p2, answer Q1#1 Q1-04, answer Q1#2 Q1-02 (superseded),
    repeat of event e2 (duplicate), a malformed line, W3 registered + check-in p9
    (W3 never closes: incomplete_workshop)
workshops/log_2017-06.jsonl (13 lines)
    W1 check-in p3, p1 again (duplicate), answer Q1#3 Q1-01, answer Q1#2 Q1-02 (wins),
    W1 closed (3 reported); W2 registered, check-ins q1 q2, answers Q1#1 Q1-02,
    Q1#2 Q1-04, W2 closed (5 reported); unknown_event_type; invalid_date
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb

from orchestration.settings import DBT_PROJECT_DIR

# The raw layer as specified in docs/raw-layer.md.
RAW_DDL = (
    "create schema if not exists raw",
    """
    create table raw.load_ledger (
        sha256 varchar primary key,
        source varchar,
        file_name varchar,
        delivery_seq integer,
        size_bytes bigint,
        first_seen_at timestamp,
        run_id varchar,
        records_read bigint,
        file_status varchar,
        extra_columns varchar,
        message varchar
    )
    """,
    """
    create table raw.votes (
        sha256 varchar,
        file_name varchar,
        record_number integer,
        response_id varchar,
        submitted_at timestamp,
        language varchar,
        country varchar,
        library_type varchar,
        years_experience integer,
        age_group varchar,
        respondent_key varchar,
        q1 varchar,
        q2 varchar,
        q3 varchar,
        q4 varchar,
        q5 varchar,
        q6 varchar,
        outcome varchar
    )
    """,
    """
    create table raw.vote_quarantine (
        sha256 varchar,
        file_name varchar,
        record_number integer,
        reason varchar,
        detail varchar,
        record_text varchar,
        response_id varchar
    )
    """,
    """
    create table raw.workshop_events (
        sha256 varchar,
        file_name varchar,
        line_number integer,
        event_id varchar,
        event_type varchar,
        workshop_id varchar,
        occurred_at timestamp,
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
    )
    """,
    """
    create table raw.workshop_quarantine (
        sha256 varchar,
        file_name varchar,
        line_number integer,
        reason varchar,
        detail varchar,
        record_text varchar,
        event_id varchar,
        workshop_id varchar
    )
    """,
)


def file_sha256(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _key(email: str) -> str:
    # Stands in for ingestion's salted hash of the lower-cased e-mail.
    return hashlib.sha256(b"test-salt" + email.lower().encode()).hexdigest()


V1, V2, V3 = "votes/export_2017-09-01.csv", "votes/export_2017-10-01.csv", "votes/export_broken.csv"
WA, WB = "workshops/log_2017-05.jsonl", "workshops/log_2017-06.jsonl"
RUN = "fixture-run"
SEEN = datetime(2017, 10, 2, 3, 0, 0)

LEDGER = [
    # sha256, source, file_name, delivery_seq, size_bytes, first_seen_at, run_id, records_read, file_status, extra_columns, message
    (file_sha256(V1), "votes", V1, 1, 1200, SEEN, RUN, 6, "loaded", "", ""),
    (file_sha256(V2), "votes", V2, 1, 900, SEEN, RUN, 4, "loaded", "browser", "extra columns ignored: browser"),
    (file_sha256(V3), "votes", V3, 1, 300, SEEN, RUN, 2, "missing_column", "", "missing required column: country"),
    (file_sha256(WA), "workshops", WA, 1, 2000, SEEN, RUN, 9, "loaded", "", ""),
    (file_sha256(WB), "workshops", WB, 1, 2600, SEEN, RUN, 13, "loaded", "", ""),
]


def _vote(file, rec, rid, ts, lang, country, lib, yrs, age, email, q, outcome):
    qs = list(q) + [""] * (6 - len(q))
    return (file_sha256(file), file, rec, rid, ts, lang, country, lib, yrs, age,
            _key(email) if email else None, *qs, outcome)


VOTES = [
    _vote(V1, 1, "R1", datetime(2017, 8, 21, 10, 0), "en", "FR", "public", 12, "35_44", "ann@example.org",
          ["Q1-02;Q1-01", "Q2-04"], "accepted"),
    _vote(V1, 2, "R2", datetime(2017, 9, 1, 8, 30), "fr", "FR", "academic", 3, "under_25", None,
          ["Q1-02"], "accepted"),
    _vote(V1, 4, "R3", datetime(2017, 9, 15, 12, 0), "zh", "CN", "national", 30, "55_64", "li@example.cn",
          ["Q1-01;Q1-03", "Q2-04;Q2-01"], "accepted"),
    # R4's first version: replaced by the later submission in V2, so Q1-05 must not count.
    _vote(V1, 5, "R4", datetime(2017, 9, 20, 9, 0), "es", "BR", "public", 20, "45_54", "ana@example.br",
          ["Q1-05"], "superseded"),
    _vote(V2, 1, "R1", datetime(2017, 8, 21, 10, 0), "en", "FR", "public", 12, "35_44", "ann@example.org",
          ["Q1-02;Q1-01", "Q2-04"], "duplicate"),
    # R4 answered Q5 only: a vote with an empty Q1.
    _vote(V2, 2, "R4", datetime(2017, 9, 30, 23, 59, 59), "es", "BR", "public", 20, "45_54", "ana@example.br",
          ["", "", "", "", "Q5-02"], "accepted"),
    # HK: a country or area that is not a UN member state.
    _vote(V2, 3, "R5", datetime(2017, 9, 10, 0, 0), "en", "HK", "school", 0, "25_34", "kai@example.hk",
          ["Q1-03;Q1-02", "", "", "", "Q5-02;Q5-01"], "accepted"),
]

VOTE_QUARANTINE = [
    # sha256, file_name, record_number, reason, detail, record_text, response_id
    (file_sha256(V1), V1, 3, "test_submission", "is_test is true", "T1,2017-09-02T10:00:00Z,...,true", "T1"),
    (file_sha256(V1), V1, 6, "invalid_choice", "q1: Q2-01 is not an option of Q1", "R9,...,Q2-01", "R9"),
    (file_sha256(V2), V2, 4, "malformed_row", "7 fields, header has 15", "R7,2017-09-03", None),
    (file_sha256(V3), V3, 1, "missing_column", "missing required column: country", "R10,...,<email:1a2b3c>", "R10"),
    (file_sha256(V3), V3, 2, "missing_column", "missing required column: country", "R11,...", "R11"),
]


def _event(file, line, event_id, event_type, workshop_id, ts, outcome, **fields):
    cols = ("kind", "title", "held_on", "country", "city", "language", "participant_ref", "library_type",
            "years_experience", "age_group", "question", "rank", "option_code", "reported_participants")
    unknown = set(fields) - set(cols)
    assert not unknown, unknown
    return (file_sha256(file), file, line, event_id, event_type, workshop_id, ts,
            *(fields.get(c) for c in cols), outcome)


def _at(day: int, month: int = 5, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2017, month, day, hour, minute)


WORKSHOP_EVENTS = [
    _event(WA, 1, "e1", "workshop_registered", "W1", _at(1), "accepted", kind="regional",
           title="Nairobi regional workshop", held_on=date(2017, 5, 10), country="KE", city="Nairobi", language="en"),
    _event(WA, 2, "e2", "participant_checked_in", "W1", _at(10, hour=9), "accepted", participant_ref="p1",
           country="KE", library_type="public", years_experience=10, age_group="35_44"),
    _event(WA, 3, "e3", "participant_checked_in", "W1", _at(10, hour=9, minute=5), "accepted", participant_ref="p2",
           country="NG", library_type="academic", years_experience=5, age_group="25_34"),
    _event(WA, 4, "e4", "answer_ranked", "W1", _at(10, hour=15), "accepted", question="Q1", rank=1, option_code="Q1-04"),
    _event(WA, 5, "e5", "answer_ranked", "W1", _at(10, hour=15), "superseded", question="Q1", rank=2, option_code="Q1-03"),
    _event(WA, 6, "e2", "participant_checked_in", "W1", _at(10, hour=9), "duplicate", participant_ref="p1",
           country="KE", library_type="public", years_experience=10, age_group="35_44"),
    # W3 never closes: nothing of it may count (its participant is the only 65_plus,
    # the only North American and the only one with 40 years of experience).
    _event(WA, 8, "e6", "workshop_registered", "W3", _at(2), "incomplete_workshop", kind="national",
           title="Tokyo national workshop", held_on=date(2017, 7, 1), country="JP", city="Tokyo", language="en"),
    _event(WA, 9, "e7", "participant_checked_in", "W3", _at(1, month=7), "incomplete_workshop", participant_ref="p9",
           country="US", library_type="special", years_experience=40, age_group="65_plus"),
    _event(WB, 1, "e8", "participant_checked_in", "W1", _at(10, hour=9, minute=10), "accepted", participant_ref="p3",
           country="KE", library_type="public", years_experience=7, age_group="45_54"),
    _event(WB, 2, "e9", "participant_checked_in", "W1", _at(10, hour=11), "duplicate", participant_ref="p1",
           country="KE", library_type="public", years_experience=10, age_group="35_44"),
    _event(WB, 3, "e10", "answer_ranked", "W1", _at(10, hour=15), "accepted", question="Q1", rank=3, option_code="Q1-01"),
    _event(WB, 4, "e11", "answer_ranked", "W1", _at(10, hour=16), "accepted", question="Q1", rank=2, option_code="Q1-02"),
    _event(WB, 5, "e12", "workshop_closed", "W1", _at(10, hour=17), "accepted", reported_participants=3),
    _event(WB, 6, "e13", "workshop_registered", "W2", _at(20), "accepted", kind="national",
           title="Beijing national workshop", held_on=date(2017, 6, 1), country="CN", city="Beijing", language="zh"),
    _event(WB, 7, "e14", "participant_checked_in", "W2", _at(1, month=6), "accepted", participant_ref="q1",
           country="CN", library_type="national", years_experience=15, age_group="45_54"),
    _event(WB, 8, "e15", "participant_checked_in", "W2", _at(1, month=6, minute=1), "accepted", participant_ref="q2",
           country="TW", library_type="other", years_experience=25, age_group="55_64"),
    _event(WB, 9, "e16", "answer_ranked", "W2", _at(1, month=6, hour=15), "accepted", question="Q1", rank=1,
           option_code="Q1-02"),
    _event(WB, 10, "e17", "answer_ranked", "W2", _at(1, month=6, hour=15), "accepted", question="Q1", rank=2,
           option_code="Q1-04"),
    _event(WB, 11, "e18", "workshop_closed", "W2", _at(1, month=6, hour=17), "accepted", reported_participants=5),
]

WORKSHOP_QUARANTINE = [
    # sha256, file_name, line_number, reason, detail, record_text, event_id, workshop_id
    (file_sha256(WA), WA, 7, "malformed_json", "not a JSON object", "{\"event_id\": \"e99\"", None, None),
    (file_sha256(WB), WB, 12, "unknown_event_type", "event_type coffee_break", "{...}", "e19", "W2"),
    (file_sha256(WB), WB, 13, "invalid_date", "held_on 2016-12-31 is not in 2017", "{...}", "e20", "W4"),
]


def create_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the five raw tables, empty."""
    for statement in RAW_DDL:
        conn.execute(statement)


def _insert(conn: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    if rows:
        placeholders = ", ".join("?" * len(rows[0]))
        conn.executemany(f"insert into raw.{table} values ({placeholders})", rows)


def load_tiny_dataset(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw tables and fill them with the tiny landing zone above."""
    create_raw_tables(conn)
    _insert(conn, "load_ledger", LEDGER)
    _insert(conn, "votes", VOTES)
    _insert(conn, "vote_quarantine", VOTE_QUARANTINE)
    _insert(conn, "workshop_events", WORKSHOP_EVENTS)
    _insert(conn, "workshop_quarantine", WORKSHOP_QUARANTINE)


def build_fixture_warehouse(warehouse_path, *, tiny: bool = True) -> None:
    """Write a warehouse file holding the raw tables (filled with the tiny data set, or empty)."""
    conn = duckdb.connect(str(warehouse_path))
    try:
        if tiny:
            load_tiny_dataset(conn)
        else:
            create_raw_tables(conn)
    finally:
        conn.close()


# ---------------------------------------------------------------------------- running dbt

def dbt_executable() -> str:
    """The dbt of this interpreter's environment (its bin/ may not be on PATH)."""
    beside = Path(sys.executable).with_name("dbt")
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def run_dbt(args: list[str], data_dir: Path, artifacts_dir: Path) -> subprocess.CompletedProcess:
    """Run the project's dbt as a subprocess against ``data_dir/warehouse.duckdb``.

    Artifacts and logs go to ``artifacts_dir`` (never the project's target/). Warnings
    are errors (``--warn-error``): the build must be clean.
    """
    env = {**os.environ, "GVW_DATA_DIR": str(data_dir), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    cmd = [
        dbt_executable(), "--warn-error", "--no-use-colors", *args,
        "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(artifacts_dir / "target"), "--log-path", str(artifacts_dir / "logs"),
    ]
    return subprocess.run(cmd, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900)
