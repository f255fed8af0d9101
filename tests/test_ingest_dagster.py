"""The ingestion assets, their reconciliation check and the landing-zone sensor, in real Dagster."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import duckdb

from landing_builders import counting_workshop, vote, write_votes, write_workshops
from orchestration.assets.ingest import RAW_ASSET_KEYS, ingest_asset_checks, ingest_assets
from orchestration.resources import WarehouseResource
from orchestration.sensors import landing_zone_sensor


def _materialize(data_dir: Path, *, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return dg.materialize([*ingest_assets, *ingest_asset_checks],
                          resources={"warehouse": WarehouseResource(data_dir=str(data_dir))},
                          raise_on_error=raise_on_error)


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> dict:
    mats = {m.asset_key: m for m in result.asset_materializations_for_node("ingest_landing_zone")}
    return {k: getattr(v, "value", v) for k, v in mats[RAW_ASSET_KEYS[name]].metadata.items()}


def _landing(data_dir: Path) -> Path:
    landing = data_dir / "landing"
    write_votes(landing, "a.csv", [vote("A"), vote("B", country="XX"), "broken"])
    write_workshops(landing, "a.jsonl", [*counting_workshop("W1"), "{nope"])
    return landing


def test_materialize_reports_metadata_and_reconciles(data_dir):
    _landing(data_dir)
    result = _materialize(data_dir)
    assert result.success
    assert {m.asset_key for m in result.asset_materializations_for_node("ingest_landing_zone")} == \
        set(RAW_ASSET_KEYS.values())
    ledger = _metadata(result, "load_ledger")
    assert (ledger["files_read"], ledger["files_skipped"], ledger["records_read"]) == (2, 0, 8)
    assert ledger["accepted"] == 5 and ledger["quarantined"] == 3
    assert ledger["outcomes"] == {"accepted": 5, "malformed_json": 1, "malformed_row": 1, "unknown_code": 1}
    assert ledger["reject_counts"] == {"malformed_json": 1, "malformed_row": 1, "unknown_code": 1}
    assert ledger["landing_dir"] == str(data_dir / "landing")
    assert ledger["warehouse"] == str(data_dir / "warehouse.duckdb")
    assert "votes/a.csv" in ledger["files"]
    votes = _metadata(result, "votes")
    assert votes["votes_outcomes"] == {"accepted": 1, "malformed_row": 1, "unknown_code": 1}
    assert votes["dagster/row_count"] == 1
    quarantine = _metadata(result, "workshop_quarantine")
    assert quarantine["reject_counts"] == {"malformed_json": 1} and quarantine["dagster/row_count"] == 1
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.asset_key == RAW_ASSET_KEYS["load_ledger"]
    assert check.severity == dg.AssetCheckSeverity.ERROR

    # a second run finds nothing new
    again = _metadata(_materialize(data_dir), "load_ledger")
    assert (again["files_read"], again["files_skipped"], again["records_read"]) == (0, 2, 0)


def test_reconciliation_fails_naming_the_file(data_dir):
    landing = _landing(data_dir)
    assert _materialize(data_dir).success
    # a record disappears behind the ledger's back
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    conn.execute("delete from raw.votes where response_id = 'A'")
    conn.close()
    write_votes(landing, "b.csv", [vote("C")])
    result = _materialize(data_dir, raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert "votes/a.csv" in check.description and "1 record(s) unaccounted for" in check.description
    assert "votes/b.csv" not in check.description
    assert check.metadata["failing_files"].value == ["votes/a.csv"]


def _skip(result) -> str:
    reason = result if isinstance(result, dg.SkipReason) else result.skip_reason
    return reason.skip_message if reason else ""


def _tick(data_dir: Path, cursor: str | None = None):
    context = dg.build_sensor_context(cursor=cursor,
                                      resources={"warehouse": WarehouseResource(data_dir=str(data_dir))})
    return landing_zone_sensor(context), context


def test_sensor_requests_a_run_for_new_files_only(data_dir):
    result, _ = _tick(data_dir)
    assert "no landing files" in _skip(result)

    landing = _landing(data_dir)
    result, _ = _tick(data_dir)   # no warehouse yet: every file is new
    [request] = result.run_requests
    shas = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(landing.rglob("a.*")))
    assert request.run_key == hashlib.sha256("\n".join(shas).encode()).hexdigest()

    assert _materialize(data_dir).success
    result, _ = _tick(data_dir, result.cursor)
    assert not result.run_requests and "nothing new" in _skip(result)

    write_votes(landing, "b.csv", [vote("C")])
    result, _ = _tick(data_dir, result.cursor)
    [request] = result.run_requests
    assert request.run_key == hashlib.sha256(hashlib.sha256((landing / "votes/b.csv").read_bytes())
                                             .hexdigest().encode()).hexdigest()


def test_sensor_skips_while_the_warehouse_is_being_written(data_dir):
    _landing(data_dir)
    assert _materialize(data_dir).success
    writer = duckdb.connect(str(data_dir / "warehouse.duckdb"))   # holds the file open for writing
    try:
        result, _ = _tick(data_dir)
    finally:
        writer.close()
    assert not result.run_requests and "busy" in _skip(result)
