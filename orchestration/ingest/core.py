"""One ingestion run: new landing files -> raw tables, then the outcomes recomputed.

The run reads and hashes every landing file (a few threads; the main thread takes the
digests in processing order) and hands the new ones, in batches of consecutive files of
one source, to a few worker threads. Each worker has its own DuckDB connection (a cursor of the caller's: same
database, own temp tables); it stages and checks a batch, then writes each of its files in
one transaction. Transactions commit in processing order whichever worker prepared them
(:class:`_CommitOrder`), so a run stopped half-way has loaded exactly the files before the
stop, as a sequential run would. Outcomes are recomputed at the end, in the main thread.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import queue
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

# Consecutive new files of one source are staged and checked together up to this many bytes
# (one query plan for many small files; a large file is a batch of its own, which bounds
# the memory a worker holds).
BATCH_BYTES = 96 << 20
# Worker threads (never more than DuckDB's ``threads`` setting). One file's statements run
# on about one core (a file is one or two row groups), so two workers keep two cores busy.
MAX_WORKERS = 2
# The write-ahead log is checkpointed when it passes this size (DuckDB's default is 16 MB,
# i.e. after almost every file; at the end of the run only, it would hold every new row
# uncompressed in memory): a few checkpoints per large run.
CHECKPOINT_THRESHOLD = "128MB"
# Threads that read and hash the landing files ahead of the loading.
HASH_THREADS = 2


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
def _checkpoint_policy(conn: duckdb.DuckDBPyConnection) -> Iterator[dict]:
    """Checkpoint when the log passes :data:`CHECKPOINT_THRESHOLD` and at the end of a run
    that wrote something (the caller sets ``state["wrote"]``), rather than at almost every
    file's commit. Each commit stays durable in the WAL. The setting is restored afterwards."""
    previous = conn.execute("select current_setting('checkpoint_threshold')").fetchone()[0]
    conn.execute(f"set checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    state = {"wrote": False}
    try:
        yield state
    finally:
        if re.fullmatch(r"[0-9.]+ ?[A-Za-z]*", str(previous)):  # DuckDB's own value, checked anyway
            conn.execute(f"set checkpoint_threshold = '{previous}'")
        if state["wrote"]:
            _checkpoint(conn)


@contextlib.contextmanager
def _setting(conn: duckdb.DuckDBPyConnection, name: str, value: int) -> Iterator[None]:
    """A DuckDB setting changed for the duration of the block (our names and integers)."""
    previous = conn.execute(f"select current_setting('{name}')").fetchone()[0]
    conn.execute(f"set {name} = {int(value)}")
    try:
        yield
    finally:
        conn.execute(f"set {name} = {int(previous)}")


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    with contextlib.suppress(duckdb.Error):   # e.g. the caller holds a transaction: the WAL keeps it all
        conn.execute("checkpoint")


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


# --- the pipeline ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _NewFile:
    """A landing file whose content is not in the ledger: to be loaded by this run."""

    order: int              # processing order among the run's new files; also its temp-table key
    slot: int               # its place in the run's report
    landing: lz.LandingFile
    sha256: str
    delivery_seq: int


@dataclass(frozen=True)
class _RunContext:
    salt: str
    run_id: str
    countries_csv: Path
    options_csv: Path
    before_commit: Callable[[str], None] | None
    reports: list[FileReport | None]


class _Cancelled(Exception):
    """Another part of the run failed: this worker stops without writing more."""


class _CommitOrder:
    """Lets the files' transactions commit one at a time, in processing order, whichever
    worker prepared them; after a failure no later file commits."""

    def __init__(self) -> None:
        self._next = 0
        self._cond = threading.Condition()
        self.error: BaseException | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def fail(self, error: BaseException) -> None:
        with self._cond:
            if self.error is None:
                self.error = error
            self._cond.notify_all()

    @contextlib.contextmanager
    def turn(self, order: int) -> Iterator[None]:
        with self._cond:
            while self._next != order and self.error is None:
                self._cond.wait()
            if self.error is not None:
                raise _Cancelled()
        try:
            yield
        except BaseException as exc:
            self.fail(exc)
            raise
        with self._cond:
            self._next = order + 1
            self._cond.notify_all()


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


def _stage(conn: duckdb.DuckDBPyConnection, nf: _NewFile, votes_batch: vt.VotesBatch | None,
           ctx: _RunContext) -> tuple[FileReport, FileLoad | None]:
    """Stage one new file; (report, load), load None when the file changed since it was
    listed and hashed (left for the next run)."""
    started = time.perf_counter()
    f = nf.landing
    # read again rather than kept from hashing: holding the files queued for the workers
    # would cost far more memory than a second read from the page cache costs time
    data = f.read_bytes()
    if f.source == "votes":
        with _readable_path(f.path, data) as path:
            load = vt.stage_votes_file(conn, votes_batch, nf.order, path, data, sha=nf.sha256,
                                       file_name=f.file_name, salt=ctx.salt)
    else:
        load = ws.stage_workshops_file(conn, nf.order, f.path, data, sha=nf.sha256, file_name=f.file_name,
                                       salt=ctx.salt)
    delivery = "new" if nf.delivery_seq == 1 else "changed"
    after = f.path.stat()
    if (after.st_size, after.st_mtime_ns) != (f.size_bytes, f.mtime_ns) or len(data) != f.size_bytes:
        # written to since it was hashed: leave it for the next run
        if votes_batch is not None:
            votes_batch.discard(nf.order)
        else:
            ws.discard_file(conn, nf.order)
        _drop_temp(conn, load.temp_tables)
        return FileReport(f.file_name, f.source, nf.sha256, f.size_bytes, delivery, nf.delivery_seq, read=False,
                          message="file changed while being read; not loaded"), None
    return FileReport(f.file_name, f.source, nf.sha256, f.size_bytes, delivery, nf.delivery_seq, read=True,
                      file_status=load.file_status, records_read=load.records_read,
                      extra_columns=load.extra_columns, message=load.message,
                      elapsed_seconds=time.perf_counter() - started), load


def _load_batch(conn: duckdb.DuckDBPyConnection, batch: list[_NewFile], order: _CommitOrder,
                ctx: _RunContext) -> None:
    """Stage and check a batch of new files of one source, then write each file in its
    own transaction, in processing order."""
    if batch[0].landing.source == "votes":
        votes_batch = vt.VotesBatch(conn)
    else:
        votes_batch = None
        ws.create_workshops_batch(conn)
    staged: list[tuple[_NewFile, FileReport, FileLoad | None]] = []
    try:
        for nf in batch:
            if order.failed:
                raise _Cancelled()
            staged.append((nf, *_stage(conn, nf, votes_batch, ctx)))
        if any(load is not None for _, _, load in staged):
            if batch[0].landing.source == "votes":
                vt.check_votes_batch(conn, votes_batch, ctx.salt)
            else:
                ws.check_workshops_batch(conn)
        for nf, report, load in staged:
            with order.turn(nf.order):
                if load is not None:
                    started = time.perf_counter()
                    _write_file(conn, load, {
                        "sha": nf.sha256, "source": report.source, "file_name": report.file_name,
                        "seq": nf.delivery_seq, "size": report.size_bytes,
                        "seen_at": dt.datetime.now(dt.UTC).replace(tzinfo=None), "run_id": ctx.run_id,
                        "records": load.records_read, "status": load.file_status,
                        "extras": ",".join(load.extra_columns), "message": load.message,
                    }, ctx.before_commit)
                    report.elapsed_seconds += time.perf_counter() - started
                ctx.reports[nf.slot] = report
    finally:
        for _, _, load in staged:
            if load is not None:
                _drop_temp(conn, load.temp_tables)
        conn.execute("drop view if exists gvw_vote_batch")
        _drop_temp(conn, [*vt.CHECK_TEMP_TABLES, *ws.CHECK_TEMP_TABLES])


def _worker(conn: duckdb.DuckDBPyConnection, batches: queue.Queue, order: _CommitOrder, ctx: _RunContext) -> None:
    try:
        load_reference(conn, ctx.countries_csv, ctx.options_csv)
        while (batch := batches.get()) is not None:
            if order.failed:
                return
            _load_batch(conn, batch, order, ctx)
    except _Cancelled:
        pass
    except BaseException as exc:   # reported by the main thread
        order.fail(exc)
    finally:
        conn.close()


def _new_file_batches(landing_dir: Path, known: dict[str, LedgerEntry], last_seq: dict[str, int],
                      reports: list[FileReport | None]) -> Iterator[list[_NewFile]]:
    """Hash every landing file; yield the new ones in batches, in processing order (see
    :func:`_batches_of_new_files`)."""
    files = lz.list_landing_files(landing_dir)
    # Hashed on HASH_THREADS threads (reading and SHA-256 release the GIL), consumed in
    # processing order: a run with nothing new is mostly this (846 MB at scale 100). The
    # threads keep only the digests; a read error surfaces at its file's turn.
    with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="gvw-hash") as pool:
        yield from _batches_of_new_files(zip(files, pool.map(_hash_landing_file, files)), known, last_seq,
                                         reports)


def _hash_landing_file(f: lz.LandingFile) -> str:
    return lz.sha256_hex(_read_landing_file(f))


def _batches_of_new_files(hashed: Iterator[tuple[lz.LandingFile, str]], known: dict[str, LedgerEntry],
                          last_seq: dict[str, int], reports: list[FileReport | None]) -> Iterator[list[_NewFile]]:
    """The new files of ``hashed`` (files with their digests, in processing order) in
    batches; appends a report for each file (``None`` for new ones: their worker fills it)."""
    first_with: dict[str, str] = {}   # sha256 -> first file of this run with that content
    batch: list[_NewFile] = []
    batch_bytes = 0
    n_new = 0
    for f, sha in hashed:
        if sha in known or sha in first_with:
            entry = known.get(sha)
            first = entry.file_name if entry else first_with[sha]
            message = "" if first == f.file_name else f"same content as {first}, already loaded"
            reports.append(FileReport(f.file_name, f.source, sha, f.size_bytes, "known",
                                      entry.delivery_seq if entry else 0, read=False, message=message))
            continue
        first_with[sha] = f.file_name
        if batch and (batch[0].landing.source != f.source or batch_bytes + f.size_bytes > BATCH_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(_NewFile(n_new, len(reports), f, sha, last_seq.get(f.file_name, 0) + 1))
        batch_bytes += f.size_bytes
        n_new += 1
        reports.append(None)
    if batch:
        yield batch


def _worker_count(conn: duckdb.DuckDBPyConnection) -> int:
    threads = int(conn.execute("select current_setting('threads')").fetchone()[0])
    return max(1, min(MAX_WORKERS, threads))


def _load_new_files(conn: duckdb.DuckDBPyConnection, landing_dir: Path, known: dict[str, LedgerEntry],
                    last_seq: dict[str, int], ctx: _RunContext) -> None:
    """Hash every file, load the new ones (``ctx.reports`` gets one report per file)."""
    order = _CommitOrder()
    max_workers = _worker_count(conn)
    with contextlib.ExitStack() as stack:
        if max_workers > 1:
            # each worker's statements on one thread: the workers keep the cores busy, and
            # DuckDB's idle helper threads would only spin between the small tasks
            stack.enter_context(_setting(conn, "threads", 1))
        _run_workers(conn, landing_dir, known, last_seq, ctx, order, max_workers)
    if order.error is not None:
        raise order.error


def _run_workers(conn: duckdb.DuckDBPyConnection, landing_dir: Path, known: dict[str, LedgerEntry],
                 last_seq: dict[str, int], ctx: _RunContext, order: _CommitOrder, max_workers: int) -> None:
    # a short queue: at most one batch waits for a free worker
    batches: queue.Queue = queue.Queue(maxsize=1)
    workers: list[threading.Thread] = []
    try:
        for batch in _new_file_batches(landing_dir, known, last_seq, ctx.reports):
            if len(workers) < max_workers:   # started on demand: a run with nothing new starts none
                worker = threading.Thread(target=_worker, args=(conn.cursor(), batches, order, ctx),
                                          name=f"gvw-ingest-{len(workers) + 1}", daemon=True)
                worker.start()
                workers.append(worker)
            while not order.failed:
                try:
                    batches.put(batch, timeout=0.2)
                    break
                except queue.Full:
                    continue
            if order.failed:
                break
    except BaseException as exc:
        order.fail(exc)
        raise
    finally:
        for _ in workers:
            while any(w.is_alive() for w in workers):
                try:
                    batches.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
        for worker in workers:
            worker.join()


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

    Each new file is written in one transaction (its records and its ledger row); the
    transactions commit in processing order. Files already in the ledger (same SHA-256)
    are not loaded again. At the end the outcomes are recomputed over everything loaded,
    unless nothing new arrived.

    ``salt`` pseudonymises e-mail addresses (required). ``before_commit(file_name)`` (called
    from a worker thread) and ``before_outcomes()`` are called at those points (tests use
    them to stop a load half-way).
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

    ctx = _RunContext(salt=salt, run_id=run_id, countries_csv=countries_csv, options_csv=options_csv,
                      before_commit=before_commit, reports=[])
    with _checkpoint_policy(conn) as state:
        try:
            _load_new_files(conn, landing_dir, known, last_seq, ctx)
        finally:
            state["wrote"] = any(r is not None and r.read for r in ctx.reports)
        reports = [r for r in ctx.reports if r is not None]
        read = [r for r in reports if r.read]
        if read:
            # the outcome queries read every loaded row: from compressed storage, with the
            # whole memory budget rather than next to the new rows still held for the WAL
            _checkpoint(conn)
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
