"""Backfills / reloads (forget deliveries, read them again) and the ingest step's retry policy,
on real DuckDB and real Dagster runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
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
from orchestration.assets.ingest import ingest_asset_checks, ingest_assets, reload_run_config
from orchestration.ingest import UnknownDeliveries, forget_deliveries, reconcile
from orchestration.ingest.core import FAULT_TRANSIENT_IO_ONCE_ENV
from orchestration.resources import WarehouseResource

FILES = ["votes/a.csv", "votes/b.csv", "votes/c.csv", "workshops/a.jsonl", "workshops/b.jsonl", "workshops/c.jsonl"]


def _landing_zone(landing: Path) -> None:
    """Files whose outcomes depend on each other: b.csv supersedes A of a.csv and repeats B,
    c.csv supersedes B; c.jsonl completes W1 and brings an earlier check-in, b.jsonl repeats E2."""
    write_votes(landing, "a.csv", [vote("A", submitted_at="2017-09-01T10:00:00Z"), vote("B"), vote("C", country="XX")])
    write_votes(landing, "b.csv", [vote("A", submitted_at="2017-09-03T10:00:00Z", q1="Q1-03"), vote("B"),
                                   vote("D")])
    write_votes(landing, "c.csv", [vote("B", submitted_at="2017-09-20T10:00:00Z", q2=""), "bro,ken"])
    write_workshops(landing, "a.jsonl", [registered("E1", "W1"), checked_in("E2", "P1", "W1")])
    write_workshops(landing, "b.jsonl", [*counting_workshop("W2", "F"), checked_in("E2", "P1", "W1")])
    write_workshops(landing, "c.jsonl", [closed("E9", 1, "W1"), checked_in("E3", "P1", "W1",
                                                                          occurred_at="2017-05-02T08:00:00Z")])


def _first_load(landing: Path, db: Path) -> dict[str, list]:
    """The raw tables of one load of ``landing`` into a fresh warehouse."""
    conn = duckdb.connect(str(db))
    try:
        ingest(conn, landing)
        return snapshot(conn, ledger_volatile=True)
    finally:
        conn.close()


def _materialize(data_dir: Path, run_config: dict | None = None, *,
                 raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize([*ingest_assets, *ingest_asset_checks], run_config=run_config,
                          resources={"warehouse": WarehouseResource(data_dir=str(data_dir))},
                          raise_on_error=raise_on_error)


def _events(result: dg.ExecuteInProcessResult, event_type: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    """The ingest step's events of one type."""
    return [e for e in result.all_events if e.event_type == event_type and e.step_key == "ingest_landing_zone"]


def _warehouse_snapshot(data_dir: Path) -> dict[str, list]:
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        assert reconcile(conn).ok
        return snapshot(conn, ledger_volatile=True)
    finally:
        conn.close()


# --- the library ------------------------------------------------------------------------------

@pytest.mark.parametrize("names", [[name] for name in FILES] + [["votes/b.csv", "workshops/c.jsonl"], None])
def test_forget_then_ingest_equals_first_load(tmp_path, names):
    landing = tmp_path / "landing"
    _landing_zone(landing)
    expected = _first_load(landing, tmp_path / "fresh.duckdb")

    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(conn, landing)
    before = snapshot(conn, ledger_volatile=True)
    assert before == expected
    forgotten = forget_deliveries(conn, names)
    assert forgotten.file_names == (FILES if names is None else sorted(names))
    left = {r[0] for r in conn.execute("select file_name from raw.load_ledger").fetchall()}
    assert left == set(FILES) - set(forgotten.file_names)
    for table in ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine"):
        assert conn.execute(f"select count(*) from raw.{table} where file_name not in (select file_name "
                            "from raw.load_ledger)").fetchone()[0] == 0
    report = ingest(conn, landing)
    assert sorted(f.file_name for f in report.read_files) == forgotten.file_names
    assert report.outcomes_recomputed
    assert snapshot(conn, ledger_volatile=True) == expected
    assert reconcile(conn).ok
    conn.close()


def test_forget_a_file_that_left_the_landing_zone_recomputes_the_others(tmp_path):
    """b.csv superseded A of a.csv and made B of b.csv a duplicate: once b.csv is forgotten
    and gone, nothing new is read, yet the outcomes of a.csv and c.csv must change."""
    landing = tmp_path / "landing"
    _landing_zone(landing)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(conn, landing)
    assert vote_outcomes(conn)[("votes/a.csv", 1)] == "superseded"
    assert workshop_outcomes(conn)[("workshops/a.jsonl", 1)] == "accepted"   # W1 closed in c.jsonl

    for name in ("votes/b.csv", "workshops/c.jsonl"):
        (landing / name).unlink()
    forgotten = forget_deliveries(conn, ["votes/b.csv", "workshops/c.jsonl"])
    assert forgotten.ledger_rows == 2 and forgotten.outcomes_reset > 0
    report = ingest(conn, landing)
    assert report.files_read == 0 and report.outcomes_recomputed
    assert vote_outcomes(conn)[("votes/a.csv", 1)] == "accepted"
    assert workshop_outcomes(conn)[("workshops/a.jsonl", 1)] == "incomplete_workshop"
    assert snapshot(conn, ledger_volatile=True) == _first_load(landing, tmp_path / "fresh.duckdb")
    conn.close()


def test_forget_every_delivery_of_a_changed_file(tmp_path):
    """A name delivered twice: the reload reads only its current content, as delivery 1."""
    landing = tmp_path / "landing"
    _landing_zone(landing)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(conn, landing)
    write_votes(landing, "a.csv", [vote("A", submitted_at="2017-09-30T10:00:00Z"), vote("E")])
    ingest(conn, landing)
    assert conn.execute("select max(delivery_seq) from raw.load_ledger where file_name = 'votes/a.csv'"
                        ).fetchone()[0] == 2
    assert forget_deliveries(conn, ["votes/a.csv"]).ledger_rows == 2
    ingest(conn, landing)
    assert snapshot(conn, ledger_volatile=True) == _first_load(landing, tmp_path / "fresh.duckdb")
    conn.close()


def test_forget_unknown_name_deletes_nothing(tmp_path):
    landing = tmp_path / "landing"
    _landing_zone(landing)
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ingest(conn, landing)
    before = snapshot(conn)
    with pytest.raises(UnknownDeliveries, match="votes/nope.csv") as err:
        forget_deliveries(conn, ["votes/a.csv", "votes/nope.csv"])
    assert err.value.unknown == ["votes/nope.csv"] and err.value.known == FILES
    assert snapshot(conn) == before
    conn.close()


# --- Dagster: run config, retries ---------------------------------------------------------------

def test_reload_run_config_shape():
    assert reload_run_config(["votes/a.csv"]) == {
        "ops": {"ingest_landing_zone": {"config": {"reload_files": ["votes/a.csv"]}}}}
    assert reload_run_config(None) == {"ops": {"ingest_landing_zone": {"config": {"reload_all": True}}}}
    with pytest.raises(ValueError):
        reload_run_config([])


@pytest.mark.parametrize("files", [["votes/b.csv"], ["workshops/c.jsonl", "votes/c.csv"], None])
def test_dagster_reload_equals_first_load(data_dir, tmp_path, files):
    landing = data_dir / "landing"
    _landing_zone(landing)
    expected = _first_load(landing, tmp_path / "fresh.duckdb")
    assert _materialize(data_dir).success

    result = _materialize(data_dir, reload_run_config(files))
    assert result.success
    mats = {m.asset_key.path[-1]: m for m in result.asset_materializations_for_node("ingest_landing_zone")}
    reloaded = sorted(files) if files is not None else FILES
    assert mats["load_ledger"].metadata["reloaded_files"].value == reloaded
    assert mats["load_ledger"].metadata["files_read"].value == len(reloaded)
    assert _warehouse_snapshot(data_dir) == expected
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)


def test_unknown_reload_file_fails_clearly_without_retry(data_dir):
    _landing_zone(data_dir / "landing")
    assert _materialize(data_dir).success
    before = _warehouse_snapshot(data_dir)

    result = _materialize(data_dir, reload_run_config(["votes/a.csv", "votes/typo.csv"]), raise_on_error=False)
    assert not result.success
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    [failure] = _events(result, dg.DagsterEventType.STEP_FAILURE)
    description = failure.step_failure_data.user_failure_data.description
    assert "votes/typo.csv" in description
    for name in FILES:   # the known names are listed
        assert name in description
    # nothing was forgotten, not even the valid name
    assert _warehouse_snapshot(data_dir) == before


def test_catalog_error_is_not_retried(data_dir):
    _landing_zone(data_dir / "landing")
    assert _materialize(data_dir).success
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    conn.execute("alter table raw.votes drop column q6")   # the raw layer no longer fits the code
    conn.close()
    write_votes(data_dir / "landing", "d.csv", [vote("Z")])

    result = _materialize(data_dir, raise_on_error=False)
    assert not result.success
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    [failure] = _events(result, dg.DagsterEventType.STEP_FAILURE)
    assert "ingestion failed" in failure.step_failure_data.user_failure_data.description


def test_transient_io_failure_is_retried_then_succeeds(data_dir, tmp_path, monkeypatch):
    landing = data_dir / "landing"
    _landing_zone(landing)
    expected = _first_load(landing, tmp_path / "fresh.duckdb")
    assert _materialize(data_dir).success

    # the next landing-file read fails once with an I/O error (the marker is consumed)
    marker = tmp_path / "fail-once"
    marker.touch()
    monkeypatch.setenv(FAULT_TRANSIENT_IO_ONCE_ENV, str(marker))
    result = _materialize(data_dir, reload_run_config(None))
    assert result.success
    assert not marker.exists()
    [retry] = _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    cause = retry.event_specific_data.error.cause
    assert cause.cls_name == "OSError" and "injected transient I/O fault" in cause.message
    assert retry.event_specific_data.seconds_to_wait == 2   # the policy's first back-off
    assert len(_events(result, dg.DagsterEventType.STEP_START)) == 1
    assert len(_events(result, dg.DagsterEventType.STEP_RESTARTED)) == 1
    # the first attempt forgot every file, then failed; the retry read them all again
    mats = {m.asset_key.path[-1]: m for m in result.asset_materializations_for_node("ingest_landing_zone")}
    assert mats["load_ledger"].metadata["files_read"].value == len(FILES)
    assert _warehouse_snapshot(data_dir) == expected
