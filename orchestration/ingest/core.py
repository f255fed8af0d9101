"""One ingestion run: new landing files -> raw tables, then the outcomes recomputed."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from orchestration.ingest import files as lz
from orchestration.ingest import votes as vt
from orchestration.ingest import workshops as ws
from orchestration.ingest.ledger import LedgerEntry, ledger_entries
from orchestration.ingest.outcomes import outcomes_pending, recompute_outcomes
from orchestration.ingest.report import FileLoad, FileReport, IngestReport
from orchestration.ingest.schema import ensure_raw_schema
from orchestration.ingest.sqlparts import execute, load_reference
from orchestration.settings import DBT_PROJECT_DIR

_LEDGER_INSERT = """
    insert into raw.load_ledger (sha256, source, file_name, delivery_seq, size_bytes, first_seen_at, run_id,
        records_read, file_status, extra_columns, message)
    values ($sha, $source, $file_name, $seq, $size, $seen_at, $run_id, $records, $status, $extras, $message)
"""


# Fault injection for tests of the retry policy: when this variable names an existing file,
# the next landing-file read deletes that file and fails like a transient I/O error.
FAULT_TRANSIENT_IO_ONCE_ENV = "GVW_FAULT_TRANSIENT_IO_ONCE"


def _read_landing_file(f: lz.LandingFile) -> bytes:
    marker = os.environ.get(FAULT_TRANSIENT_IO_ONCE_ENV)   # read at run time, never at import
    if marker:
        try:
            Path(marker).unlink()
        except FileNotFoundError:
            pass
        else:
            raise OSError(errno.EIO, f"injected transient I/O fault ({FAULT_TRANSIENT_IO_ONCE_ENV})", str(f.path))
    return f.read_bytes()


def default_countries_csv() -> Path:
    return DBT_PROJECT_DIR / "seeds" / "countries.csv"


def default_options_csv() -> Path:
    return DBT_PROJECT_DIR / "seeds" / "options.csv"


@contextlib.contextmanager
def _readable_path(path: Path, data: bytes) -> Iterator[Path]:
    """A path DuckDB's reader takes literally: DuckDB expands glob characters in file names
    (``*?[]{}``), so such a file is read from a private copy of the bytes already read."""
    if not any(ch in str(path) for ch in "*?[]{}"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="gvw_ingest_") as tmp:
        copy = Path(tmp) / "file.csv"
        copy.write_bytes(data)
        yield copy


@contextlib.contextmanager
def _one_checkpoint(conn: duckdb.DuckDBPyConnection) -> Iterator[dict]:
    """Checkpoint once, at the end of a run that wrote something (the caller sets
    ``state["wrote"]``), rather than at every file's commit.

    Each commit stays durable in the WAL; DuckDB would otherwise checkpoint (compress and
    rewrite) whenever the WAL passes 16 MB, i.e. after almost every file, which costs more
    than one checkpoint of everything. The setting is restored afterwards.
    """
    previous = conn.execute("select current_setting('checkpoint_threshold')").fetchone()[0]
    conn.execute("set checkpoint_threshold = '1TB'")
    state = {"wrote": False}
    try:
        yield state
    finally:
        if re.fullmatch(r"[0-9.]+ ?[A-Za-z]*", str(previous)):  # DuckDB's own value, checked anyway
            conn.execute(f"set checkpoint_threshold = '{previous}'")
        if state["wrote"]:
            with contextlib.suppress(duckdb.Error):   # another transaction open: the WAL keeps it all
                conn.execute("checkpoint")


def _write_file(conn: duckdb.DuckDBPyConnection, load: FileLoad, ledger_row: dict,
                before_commit: Callable[[str], None] | None) -> None:
    """The file's rows and its ledger row, in one transaction: all or nothing."""
    conn.execute("begin transaction")
    try:
        for sql, params in load.writes:
            execute(conn, sql, params)
        conn.execute(_LEDGER_INSERT, ledger_row)
        if before_commit is not None:
            before_commit(ledger_row["file_name"])
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


def _drop_temp(conn: duckdb.DuckDBPyConnection, tables: list[str]) -> None:
    for table in tables:
        conn.execute(f"drop table if exists {table}")  # our own temp table names


def _outcome_counts(conn: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, int]]:
    """sha256 -> outcome or reason -> records, for the files the run loaded."""
    rows = conn.execute("""
        with f as (select sha256 from raw.load_ledger where run_id = $run_id)
        select sha256, outcome, count(*) from raw.votes where sha256 in (select sha256 from f) group by all
        union all select sha256, reason, count(*) from raw.vote_quarantine where sha256 in (select sha256 from f) group by all
        union all select sha256, outcome, count(*) from raw.workshop_events where sha256 in (select sha256 from f) group by all
        union all select sha256, reason, count(*) from raw.workshop_quarantine where sha256 in (select sha256 from f) group by all
    """, {"run_id": run_id}).fetchall()
    out: dict[str, dict[str, int]] = {}
    for sha, code, n in rows:
        out.setdefault(sha, {})[code or "pending"] = n
    return out


def raw_totals(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """source -> outcome or reason -> records, over the whole raw layer."""
    rows = conn.execute("""
        select 'votes', outcome, count(*) from raw.votes group by all
        union all select 'votes', reason, count(*) from raw.vote_quarantine group by all
        union all select 'workshops', outcome, count(*) from raw.workshop_events group by all
        union all select 'workshops', reason, count(*) from raw.workshop_quarantine group by all
    """).fetchall()
    out: dict[str, dict[str, int]] = {"votes": {}, "workshops": {}}
    for source, code, n in rows:
        out[source][code or "pending"] = n
    return {k: dict(sorted(v.items())) for k, v in out.items()}


def _load_new_files(conn: duckdb.DuckDBPyConnection, landing_dir: Path, known: dict[str, LedgerEntry],
                    last_seq: dict[str, int], reports: list[FileReport], staged: list[tuple[FileReport, FileLoad]],
                    *, salt: str, run_id: str, countries_csv: Path, options_csv: Path,
                    before_commit: Callable[[str], None] | None) -> None:
    """Steps 1 to 3 of a run; fills ``reports`` (every file seen) and ``staged`` (the files
    read)."""
    # step 1, file by file: read (never a content already in the ledger), number, stage
    staged_shas: dict[str, str] = {}
    votes_batch: vt.VotesBatch | None = None
    for f in lz.list_landing_files(landing_dir):
        file_started = time.perf_counter()
        data = _read_landing_file(f)
        sha = lz.sha256_hex(data)
        if sha in known or sha in staged_shas:
            entry = known.get(sha)
            first = entry.file_name if entry else staged_shas[sha]
            message = "" if first == f.file_name else f"same content as {first}, already loaded"
            reports.append(FileReport(f.file_name, f.source, sha, len(data), "known",
                                      entry.delivery_seq if entry else 0, read=False, message=message))
            continue
        if votes_batch is None:
            load_reference(conn, countries_csv, options_csv)
            votes_batch = vt.VotesBatch()
            ws.create_workshops_batch(conn)
        seq = last_seq.get(f.file_name, 0) + 1
        key = len(staged)
        if f.source == "votes":
            with _readable_path(f.path, data) as path:
                load = vt.stage_votes_file(conn, votes_batch, key, path, data, sha=sha, file_name=f.file_name,
                                           salt=salt)
        else:
            load = ws.stage_workshops_file(conn, key, f.path, data, sha=sha, file_name=f.file_name, salt=salt)
        after = f.path.stat()
        delivery = "new" if seq == 1 else "changed"
        if (after.st_size, after.st_mtime_ns) != (f.size_bytes, f.mtime_ns) or len(data) != f.size_bytes:
            # written to while we read it: leave it for the next run
            votes_batch.discard(key)
            conn.execute(f"delete from gvw_ws_lines where file_key = {key}")
            _drop_temp(conn, load.temp_tables)
            reports.append(FileReport(f.file_name, f.source, sha, len(data), delivery, seq, read=False,
                                      message="file changed while being read; not loaded"))
            continue
        report = FileReport(f.file_name, f.source, sha, len(data), delivery, seq, read=True,
                            file_status=load.file_status, records_read=load.records_read,
                            extra_columns=load.extra_columns, message=load.message,
                            elapsed_seconds=time.perf_counter() - file_started)
        reports.append(report)
        staged.append((report, load))
        staged_shas[sha] = f.file_name
    if not staged:
        return

    # step 2, once: the record rules over every staged record of each source
    vt.check_votes_batch(conn, votes_batch, salt)
    ws.check_workshops_batch(conn)

    # step 3, file by file: its records and its ledger row in one transaction
    for report, load in staged:
        file_started = time.perf_counter()
        ledger_row = {
            "sha": report.sha256, "source": report.source, "file_name": report.file_name,
            "seq": report.delivery_seq, "size": report.size_bytes,
            "seen_at": dt.datetime.now(dt.UTC).replace(tzinfo=None), "run_id": run_id,
            "records": load.records_read, "status": load.file_status,
            "extras": ",".join(load.extra_columns), "message": load.message,
        }
        _write_file(conn, load, ledger_row, before_commit)
        _drop_temp(conn, load.temp_tables)
        known[report.sha256] = LedgerEntry(report.sha256, report.file_name, report.delivery_seq)
        last_seq[report.file_name] = report.delivery_seq
        report.elapsed_seconds += time.perf_counter() - file_started


def ingest_landing_zone(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    *,
    salt: str,
    run_id: str | None = None,
    countries_csv: Path | None = None,
    options_csv: Path | None = None,
    before_commit: Callable[[str], None] | None = None,
    before_outcomes: Callable[[], None] | None = None,
) -> IngestReport:
    """Load every landing file not yet in the ledger into the raw layer.

    Each new file is read alone and written in one transaction (its records and its ledger
    row); files already in the ledger (same SHA-256) are not read again. At the end the
    outcomes are recomputed over everything loaded, unless nothing new arrived.

    ``salt`` pseudonymises e-mail addresses (required). ``before_commit(file_name)`` and
    ``before_outcomes()`` are called at those points (tests use them to stop a load
    half-way).
    """
    if not salt:
        raise ValueError("a PII salt is required to pseudonymise respondent e-mails")
    started = time.perf_counter()
    run_id = run_id or f"ingest-{uuid.uuid4().hex[:12]}"
    landing_dir = Path(landing_dir)
    countries_csv = Path(countries_csv) if countries_csv else default_countries_csv()
    options_csv = Path(options_csv) if options_csv else default_options_csv()

    ensure_raw_schema(conn)
    # parsed rows keep the file's order: record numbers rely on it
    conn.execute("set preserve_insertion_order = true")
    known = ledger_entries(conn)
    last_seq: dict[str, int] = {}
    for entry in known.values():
        last_seq[entry.file_name] = max(last_seq.get(entry.file_name, 0), entry.delivery_seq)

    reports: list[FileReport] = []
    staged: list[tuple[FileReport, FileLoad]] = []
    with _one_checkpoint(conn) as state:
        try:
            _load_new_files(conn, landing_dir, known, last_seq, reports, staged, salt=salt, run_id=run_id,
                            countries_csv=countries_csv, options_csv=options_csv, before_commit=before_commit)
        finally:
            state["wrote"] = any(r.read for r in reports)
            # temp tables live as long as the connection: never leave the run's behind
            for _, load in staged:
                _drop_temp(conn, load.temp_tables)
            conn.execute("drop view if exists gvw_vote_batch")
            _drop_temp(conn, [*vt.CHECK_TEMP_TABLES, *ws.CHECK_TEMP_TABLES])

        read = [r for r in reports if r.read]
        # nothing new and nothing left over by an interrupted run: no write at all
        recompute = bool(read) or outcomes_pending(conn)
        earlier_changed = 0
        if recompute:
            if before_outcomes is not None:
                before_outcomes()
            written, earlier_changed = recompute_outcomes(conn)
            state["wrote"] = state["wrote"] or written > 0
    if read:
        counts = _outcome_counts(conn, run_id)
        for r in read:
            r.outcomes = dict(sorted(counts.get(r.sha256, {}).items()))
    return IngestReport(
        run_id=run_id, landing_dir=landing_dir, files=reports, outcomes_recomputed=recompute,
        earlier_outcomes_changed=earlier_changed, totals=raw_totals(conn),
        elapsed_seconds=time.perf_counter() - started,
    )
