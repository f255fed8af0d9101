"""Hand-made landing zones for the ingestion tests: small votes CSV and workshop JSONL files,
written byte for byte, and a few readers of the raw tables.

Every builder starts from a record that passes every rule; a test overrides the fields it
is about, so each record breaks exactly the rules the test names.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

from orchestration.ingest import IngestReport, ingest_landing_zone
from orchestration.settings import DBT_PROJECT_DIR

SALT = "test-salt"
COUNTRIES_CSV = DBT_PROJECT_DIR / "seeds" / "countries.csv"
OPTIONS_CSV = DBT_PROJECT_DIR / "seeds" / "options.csv"

VOTE_COLUMNS = ["response_id", "submitted_at", "language", "country", "library_type", "years_experience",
                "age_group", "respondent_email", "is_test", "q1", "q2", "q3", "q4", "q5", "q6"]


# --- votes ------------------------------------------------------------------------------------

def vote(response_id: str = "R1", **fields: str) -> dict[str, str]:
    """A vote record that passes every rule, with ``fields`` overriding its values."""
    record = {
        "response_id": response_id,
        "submitted_at": "2017-09-01T12:00:00+02:00",
        "language": "en",
        "country": "FR",
        "library_type": "public",
        "years_experience": "12",
        "age_group": "35_44",
        "respondent_email": "",
        "is_test": "false",
        "q1": "Q1-01;Q1-02",
        "q2": "Q2-04",
        "q3": "",
        "q4": "Q4-01;Q4-02;Q4-03;Q4-04;Q4-05",
        "q5": "Q5-02",
        "q6": "Q6-10",
    }
    record.update(fields)
    return record


def csv_bytes(rows: list[dict[str, str] | list[str] | str], columns: list[str] | None = None, *,
              header: list[str] | None = None, bom: bool = False, eol: str = "\n", quote_all: bool = False) -> bytes:
    """A CSV file: ``header`` (default ``columns``), then one record per row. A row is a
    dict (values by column), a list (fields as they are) or a str (a raw line, written as
    is, without line ending)."""
    columns = columns or VOTE_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=eol, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header or columns)
    for row in rows:
        if isinstance(row, str):
            out.write(row + eol)
        elif isinstance(row, dict):
            writer.writerow([row.get(c, "") for c in columns])
        else:
            writer.writerow(row)
    data = out.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def write_file(landing: Path, relpath: str, data: bytes) -> Path:
    path = landing / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_votes(landing: Path, name: str, rows: list, **kwargs) -> Path:
    """``landing/votes/<name>`` holding ``rows`` (see :func:`csv_bytes`)."""
    return write_file(landing, f"votes/{name}", csv_bytes(rows, **kwargs))


# --- workshops --------------------------------------------------------------------------------

def event(event_id: str, event_type: str, workshop_id: str = "W1", occurred_at: str = "2017-05-02T10:00:00+02:00",
          **fields) -> dict:
    return {"event_id": event_id, "event_type": event_type, "workshop_id": workshop_id,
            "occurred_at": occurred_at, **fields}


def registered(event_id: str, workshop_id: str = "W1", occurred_at: str = "2017-05-01T09:00:00+02:00",
               **fields) -> dict:
    values = {"kind": "national", "title": "Global Vision workshop", "held_on": "2017-05-02", "country": "DE",
              "city": "Berlin", "language": "de"}
    values.update(fields)
    return event(event_id, "workshop_registered", workshop_id, occurred_at, **values)


def checked_in(event_id: str, participant_ref: str, workshop_id: str = "W1",
               occurred_at: str = "2017-05-02T09:30:00+02:00", **fields) -> dict:
    values = {"participant_ref": participant_ref, "country": "DE", "library_type": "academic",
              "years_experience": 10, "age_group": "45_54"}
    values.update(fields)
    return event(event_id, "participant_checked_in", workshop_id, occurred_at, **values)


def answer(event_id: str, question: str, rank, option: str, workshop_id: str = "W1",
           occurred_at: str = "2017-05-02T15:00:00+02:00", **fields) -> dict:
    return event(event_id, "answer_ranked", workshop_id, occurred_at, question=question, rank=rank, option=option,
                 **fields)


def closed(event_id: str, reported: int = 1, workshop_id: str = "W1",
           occurred_at: str = "2017-05-02T18:00:00+02:00", **fields) -> dict:
    return event(event_id, "workshop_closed", workshop_id, occurred_at, reported_participants=reported, **fields)


def counting_workshop(workshop_id: str = "W1", prefix: str = "E") -> list[dict]:
    """A workshop that counts: registration, one check-in, one answer, closure."""
    return [
        registered(f"{prefix}1", workshop_id),
        checked_in(f"{prefix}2", "P1", workshop_id),
        answer(f"{prefix}3", "Q1", 1, "Q1-02", workshop_id),
        closed(f"{prefix}4", 1, workshop_id),
    ]


def jsonl_bytes(lines: list[dict | str], *, eol: str = "\n", bom: bool = False) -> bytes:
    """JSON Lines: a dict becomes one JSON object, a str is written as is."""
    text = "".join((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + eol for line in lines)
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def write_workshops(landing: Path, name: str, lines: list[dict | str], **kwargs) -> Path:
    return write_file(landing, f"workshops/{name}", jsonl_bytes(lines, **kwargs))


# --- running and reading ------------------------------------------------------------------------

def ingest(conn: duckdb.DuckDBPyConnection, landing: Path, **kwargs) -> IngestReport:
    kwargs.setdefault("salt", SALT)
    kwargs.setdefault("countries_csv", COUNTRIES_CSV)
    kwargs.setdefault("options_csv", OPTIONS_CSV)
    return ingest_landing_zone(conn, landing, **kwargs)


def vote_outcomes(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], str]:
    """(file name, record number) -> outcome or reason, for every vote record."""
    rows = conn.execute("""
        select file_name, record_number, outcome from raw.votes
        union all select file_name, record_number, reason from raw.vote_quarantine
    """).fetchall()
    return {(f, n): o for f, n, o in rows}


def workshop_outcomes(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, int], str]:
    """(file name, line number) -> outcome or reason, for every workshop line."""
    rows = conn.execute("""
        select file_name, line_number, outcome from raw.workshop_events
        union all select file_name, line_number, reason from raw.workshop_quarantine
    """).fetchall()
    return {(f, n): o for f, n, o in rows}


def quarantine_row(conn: duckdb.DuckDBPyConnection, table: str, file_name: str, number: int) -> dict:
    column = "record_number" if table == "vote_quarantine" else "line_number"
    cursor = conn.execute(f"select * from raw.{table} where file_name = ? and {column} = ?", [file_name, number])
    names = [d[0] for d in cursor.description]
    row = cursor.fetchone()
    return dict(zip(names, row)) if row else {}


def snapshot(conn: duckdb.DuckDBPyConnection, *, ledger_volatile: bool = False) -> dict[str, list]:
    """Every raw table's rows, sorted (the ledger without its run id and time when
    ``ledger_volatile``: they differ between otherwise identical loads)."""
    out = {}
    for table in ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine", "load_ledger"):
        cursor = conn.execute(f"select * from raw.{table}")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        if table == "load_ledger" and ledger_volatile:
            drop = {names.index("first_seen_at"), names.index("run_id")}
            rows = [tuple(v for i, v in enumerate(r) if i not in drop) for r in rows]
        out[table] = sorted(rows, key=repr)
    return out


def all_text(conn: duckdb.DuckDBPyConnection) -> str:
    """Every value of every raw table as one text (to look for data that must not be there)."""
    parts = []
    for table in ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine", "load_ledger"):
        for row in conn.execute(f"select * from raw.{table}").fetchall():
            parts.extend(str(v) for v in row)
    return "\n".join(parts)
