"""Incremental, idempotent ingestion: the ledger, reruns, changed files, one-shot equivalence,
and a load killed half-way (a real process, SIGKILL) then run again."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from landing_builders import (
    checked_in,
    closed,
    counting_workshop,
    ingest,
    registered,
    snapshot,
    vote,
    vote_outcomes,
    workshop_outcomes,
    write_votes,
    write_workshops,
)
from orchestration.ingest import reconcile
from orchestration.settings import PROJECT_ROOT

TESTS_DIR = Path(__file__).resolve().parent


def _landing_zone(landing: Path) -> None:
    """Three votes files and three workshop files whose outcomes depend on each other."""
    write_votes(landing, "a.csv", [vote("A", submitted_at="2017-09-01T10:00:00Z"), vote("B"), vote("C", country="XX")])
    write_votes(landing, "b.csv", [vote("A", submitted_at="2017-09-03T10:00:00Z", q1="Q1-03"), vote("B"),
                                   vote("D")])
    write_votes(landing, "c.csv", [vote("B", submitted_at="2017-09-20T10:00:00Z", q2=""), "bro,ken"])
    write_workshops(landing, "a.jsonl", [registered("E1", "W1"), checked_in("E2", "P1", "W1")])
    write_workshops(landing, "b.jsonl", [*counting_workshop("W2", "F"), checked_in("E2", "P1", "W1")])
    write_workshops(landing, "c.jsonl", [closed("E9", 1, "W1"), checked_in("E3", "P1", "W1",
                                                                          occurred_at="2017-05-02T08:00:00Z")])


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rerun_with_no_new_files_changes_nothing(tmp_path):
    landing, db = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    _landing_zone(landing)
    conn = duckdb.connect(str(db))
    first = ingest(conn, landing)
    before = snapshot(conn)
    conn.close()
    digest, mtime = _file_digest(db), db.stat().st_mtime_ns

    conn = duckdb.connect(str(db))
    second = ingest(conn, landing)
    after = snapshot(conn)
    conn.close()
    assert first.files_read == 6 and second.files_read == 0 and second.files_skipped == 6
    assert not second.outcomes_recomputed and second.records_read == 0
    assert after == before
    # nothing was written: the database file is byte for byte the same
    assert _file_digest(db) == digest and db.stat().st_mtime_ns == mtime
    assert not Path(str(db) + ".wal").exists()


def test_new_file_is_read_alone_and_sees_earlier_loads(tmp_path):
    landing = tmp_path / "landing"
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    write_votes(landing, "a.csv", [vote("A", submitted_at="2017-09-01T10:00:00Z"), vote("B")])
    ingest(conn, landing)
    write_votes(landing, "b.csv", [vote("A", submitted_at="2017-09-02T10:00:00Z", q6=""), vote("B")])
    report = ingest(conn, landing)
    assert [f.file_name for f in report.read_files] == ["votes/b.csv"]
    assert report.new_files == ["votes/b.csv"] and report.files_skipped == 1
    assert report.earlier_outcomes_changed == 1     # a.csv's A is superseded now
    assert vote_outcomes(conn) == {("votes/a.csv", 1): "superseded", ("votes/a.csv", 2): "accepted",
                                   ("votes/b.csv", 1): "accepted", ("votes/b.csv", 2): "duplicate"}
    assert report.outcomes == {"accepted": 1, "duplicate": 1}


def test_changed_file_is_a_new_delivery(tmp_path):
    landing = tmp_path / "landing"
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    write_votes(landing, "a.csv", [vote("A"), vote("B", submitted_at="2017-09-01T10:00:00Z")])
    ingest(conn, landing)
    # a re-export under the same name: B corrected (same instant), C added
    write_votes(landing, "a.csv", [vote("A"), vote("B", submitted_at="2017-09-01T10:00:00Z", q3="Q3-03"),
                                   vote("C")])
    report = ingest(conn, landing)
    assert report.changed_files == ["votes/a.csv"] and report.new_files == []
    assert report.read_files[0].delivery_seq == 2
    ledger = conn.execute("select file_name, delivery_seq, records_read from raw.load_ledger "
                          "order by delivery_seq").fetchall()
    assert ledger == [("votes/a.csv", 1, 2), ("votes/a.csv", 2, 3)]
    # the later delivery wins the tie on B; A is a duplicate of the first delivery's A
    rows = conn.execute("select response_id, outcome, l.delivery_seq from raw.votes v "
                        "join raw.load_ledger l using (sha256) order by all").fetchall()
    assert rows == [("A", "accepted", 1), ("A", "duplicate", 2), ("B", "accepted", 2), ("B", "superseded", 1),
                    ("C", "accepted", 2)]
    assert reconcile(conn).ok


def test_one_file_at_a_time_equals_one_load(tmp_path):
    full = tmp_path / "full" / "landing"
    _landing_zone(full)
    one_shot = duckdb.connect(str(tmp_path / "one.duckdb"))
    ingest(one_shot, full)

    # the same files delivered one per run, in reverse name order
    step = tmp_path / "step" / "landing"
    stepwise = duckdb.connect(str(tmp_path / "step.duckdb"))
    for path in sorted(full.rglob("*.*"), reverse=True):
        target = step / path.relative_to(full)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        report = ingest(stepwise, step)
        assert report.files_read == 1
    assert snapshot(stepwise, ledger_volatile=True) == snapshot(one_shot, ledger_volatile=True)
    assert vote_outcomes(stepwise) == vote_outcomes(one_shot)
    assert workshop_outcomes(stepwise)[("workshops/a.jsonl", 1)] == "accepted"   # W1 closed by c.jsonl


_KILLABLE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import duckdb
    from landing_builders import ingest
    landing, db, marker, stop_at = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]

    def hold(name=None):
        # the file's rows are written, its transaction not committed: wait to be killed
        if name is None or name == stop_at:
            marker.write_text(stop_at)
            time.sleep(120)

    conn = duckdb.connect(db)
    if stop_at == "outcomes":
        ingest(conn, landing, before_outcomes=hold)
    else:
        ingest(conn, landing, before_commit=hold)
""")


@pytest.mark.parametrize("stop_at", ["votes/b.csv", "workshops/b.jsonl", "outcomes"])
def test_load_killed_mid_way_then_rerun(tmp_path, stop_at):
    landing = tmp_path / "landing"
    _landing_zone(landing)
    reference = duckdb.connect(str(tmp_path / "reference.duckdb"))
    ingest(reference, landing)

    db, marker = tmp_path / "warehouse.duckdb", tmp_path / "killed_at"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), str(PROJECT_ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(landing), str(db), str(marker), stop_at],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1].decode()
            assert time.monotonic() < deadline, "the load never reached the kill point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    conn = duckdb.connect(str(db))
    loaded = {r[0] for r in conn.execute("select file_name from raw.load_ledger").fetchall()}
    if stop_at == "outcomes":
        # every file committed, outcomes never computed
        assert len(loaded) == 6
        assert conn.execute("select count(*) from raw.votes where outcome is null").fetchone()[0] > 0
        assert not reconcile(conn).ok
    else:
        # files before the killed one are in, the killed one left no trace
        assert stop_at not in loaded and "votes/a.csv" in loaded
        assert conn.execute("select count(*) from raw.vote_quarantine where file_name = ?",
                            [stop_at]).fetchone()[0] == 0
        assert conn.execute("select count(*) from raw.votes where file_name = ?", [stop_at]).fetchone()[0] == 0
    rerun = ingest(conn, landing)
    assert rerun.outcomes_recomputed
    assert snapshot(conn, ledger_volatile=True) == snapshot(reference, ledger_volatile=True)
    assert reconcile(conn).ok


def _many_files(landing: Path) -> list[str]:
    """Files of both sources whose outcomes depend on each other across files."""
    names = []
    for i in range(6):
        rows = [vote(f"V{i}"), vote("SHARED", submitted_at=f"2017-09-0{i + 1}T10:00:00Z"), vote(f"X{i}", country="XX")]
        write_votes(landing, f"v{i}.csv", rows)
        names.append(f"votes/v{i}.csv")
    for i in range(6):
        write_workshops(landing, f"w{i}.jsonl", [*counting_workshop(f"W{i}", f"E{i}-"),
                                                 checked_in(f"C{i}", "P1", "WX"), registered("R-WX", "WX")])
        names.append(f"workshops/w{i}.jsonl")
    return names


@pytest.fixture()
def small_batches(monkeypatch):
    """One file per batch and two workers: files are staged in parallel, committed in order."""
    from orchestration.ingest import core
    monkeypatch.setattr(core, "BATCH_BYTES", 1)
    monkeypatch.setattr(core, "MAX_WORKERS", 2)


def test_batches_and_workers_commit_in_processing_order(tmp_path, small_batches, monkeypatch):
    landing = tmp_path / "landing"
    names = _many_files(landing)
    committed: list[str] = []
    conn = duckdb.connect(str(tmp_path / "w.duckdb"), config={"threads": 2})
    ingest(conn, landing, before_commit=committed.append)
    assert committed == sorted(names)

    # the same landing zone in one batch, one worker: the same raw layer
    from orchestration.ingest import core
    monkeypatch.setattr(core, "BATCH_BYTES", 1 << 30)
    monkeypatch.setattr(core, "MAX_WORKERS", 1)
    one = duckdb.connect(str(tmp_path / "one.duckdb"))
    ingest(one, landing)
    assert snapshot(conn, ledger_volatile=True) == snapshot(one, ledger_volatile=True)
    assert reconcile(conn).ok


def test_a_failing_file_stops_the_run_after_the_files_before_it(tmp_path, small_batches):
    landing = tmp_path / "landing"
    names = _many_files(landing)
    stop_at = "votes/v3.csv"

    def fail(name):
        if name == stop_at:
            raise RuntimeError("stop here")

    conn = duckdb.connect(str(tmp_path / "w.duckdb"), config={"threads": 2})
    with pytest.raises(RuntimeError, match="stop here"):
        ingest(conn, landing, before_commit=fail)
    loaded = {r[0] for r in conn.execute("select file_name from raw.load_ledger").fetchall()}
    assert loaded == {n for n in names if n < stop_at}
    assert conn.execute("select count(*) from raw.votes where file_name >= ?", [stop_at]).fetchone()[0] == 0
    # the next run loads the rest and ends like a single run
    rerun = ingest(conn, landing)
    assert sorted(rerun.new_files) == [n for n in names if n >= stop_at]
    reference = duckdb.connect(str(tmp_path / "reference.duckdb"))
    ingest(reference, landing)
    assert snapshot(conn, ledger_volatile=True) == snapshot(reference, ledger_volatile=True)
