"""Ingestion assets: the landing zone into the five ``raw`` tables, and their reconciliation.

One multi-asset writes all five tables (they change together, file by file, in one
transaction per file); dbt sources link to these asset keys through meta.dagster.asset_key.
"""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.

import dagster as dg

from orchestration.ingest import IngestReport, reconcile
from orchestration.ingest import ingest_landing_zone as run_ingestion
from orchestration.resources import WarehouseResource

INGEST_GROUP = "ingest"
RAW_ASSET_KEYS: dict[str, dg.AssetKey] = {
    name: dg.AssetKey(["raw", name])
    for name in ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine", "load_ledger")
}
_DESCRIPTIONS = {
    "votes": "Vote records that passed every record rule; outcome accepted / duplicate / superseded.",
    "vote_quarantine": "Quarantined vote records with their reason code (e-mail masked).",
    "workshop_events": "Workshop events that passed every record rule; outcome accepted / duplicate / "
                       "superseded / incomplete_workshop.",
    "workshop_quarantine": "Quarantined workshop lines with their reason code.",
    "load_ledger": "One row per delivered landing file (content hash): what was read, when, and how.",
}


def _file_table(report: IngestReport) -> str:
    """Markdown table of the files a run saw."""
    lines = ["| file | delivery | status | records | outcomes | note |", "| --- | --- | --- | --- | --- | --- |"]
    for f in report.files:
        outcomes = ", ".join(f"{k} {n:,}" for k, n in f.outcomes.items())
        status = f.file_status if f.read else "skipped (in ledger)"
        lines.append(f"| {f.file_name} | {f.delivery} #{f.delivery_seq} | {status} | {f.records_read:,} | "
                     f"{outcomes} | {f.message.replace('|', '/')} |")
    return "\n".join(lines)


def _metadata(report: IngestReport, name: str, row_count: int, warehouse_path: str) -> dict:
    meta: dict = {
        "files_seen": report.files_seen,
        "files_read": report.files_read,
        "files_skipped": report.files_skipped,
        "new_files": dg.MetadataValue.json(report.new_files),
        "changed_files": dg.MetadataValue.json(report.changed_files),
        "records_read": report.records_read,
        "accepted": report.accepted,
        "quarantined": report.quarantined,
        "outcomes": dg.MetadataValue.json(report.outcomes),
        "outcomes_recomputed": report.outcomes_recomputed,
        "earlier_outcomes_changed": report.earlier_outcomes_changed,
        "landing_dir": dg.MetadataValue.path(str(report.landing_dir)),
        "warehouse": dg.MetadataValue.path(warehouse_path),
        "table": f"raw.{name}",
        "elapsed_seconds": round(report.elapsed_seconds, 3),
        "dagster/row_count": row_count,
    }
    source = "votes" if name.startswith("vote") else "workshops" if name.startswith("workshop") else None
    kept = {"accepted", "duplicate", "superseded", "incomplete_workshop"}
    if source:
        mine = report.outcomes_of(source)
        totals = report.totals[source]
        meta[f"{source}_outcomes"] = dg.MetadataValue.json(mine)
        meta[f"{source}_totals"] = dg.MetadataValue.json(totals)
        meta["reject_counts"] = dg.MetadataValue.json({k: n for k, n in mine.items() if k not in kept})
        meta["reject_totals"] = dg.MetadataValue.json({k: n for k, n in totals.items() if k not in kept})
    else:
        meta["files"] = dg.MetadataValue.md(_file_table(report))
        meta["reject_counts"] = dg.MetadataValue.json({k: n for k, n in report.outcomes.items() if k not in kept})
    return meta


@dg.multi_asset(
    name="ingest_landing_zone",
    specs=[dg.AssetSpec(key, description=_DESCRIPTIONS[name], group_name=INGEST_GROUP, kinds={"duckdb"})
           for name, key in RAW_ASSET_KEYS.items()],
    can_subset=False,
    description="Load new landing files (votes CSV, workshop JSONL) into the raw layer: each record accepted "
                "or quarantined with a reason code; outcomes recomputed over everything loaded.",
)
def ingest_landing_zone(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = warehouse.settings()
    salt = settings.pii_salt()
    with warehouse.connect() as conn:
        report = run_ingestion(conn, settings.landing_dir, salt=salt, run_id=context.run.run_id)
        row_counts = {name: conn.execute(f"select count(*) from raw.{name}").fetchone()[0]  # our table names
                      for name in RAW_ASSET_KEYS}
    context.log.info(report.summary())
    for f in report.read_files:
        if f.file_status != "loaded":
            context.log.warning(f"{f.file_name}: {f.file_status}: {f.message}")
    for name, key in RAW_ASSET_KEYS.items():
        yield dg.MaterializeResult(asset_key=key,
                                   metadata=_metadata(report, name, row_counts[name], str(settings.warehouse_path)))


@dg.asset_check(
    asset=RAW_ASSET_KEYS["load_ledger"],
    name="reconciliation",
    blocking=True,
    description="For every loaded file: records read = accepted + each reason code + duplicate + superseded "
                "(+ incomplete_workshop), every record numbered once.",
)
def reconciliation_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    path = warehouse.settings().warehouse_path
    if not path.exists():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description=f"no warehouse at {path}: nothing to reconcile")
    with warehouse.connect(read_only=True) as conn:
        result = reconcile(conn)
    failing = [f.file_name for f in result.failures]
    return dg.AssetCheckResult(
        passed=result.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.describe(),
        metadata={
            "files_checked": len(result.files),
            "failing_files": dg.MetadataValue.json(failing),
            "orphan_rows": dg.MetadataValue.json(result.orphan_rows),
            "details": dg.MetadataValue.md("\n".join(f"- {f.describe()}" for f in result.failures) or "all reconcile"),
        },
    )


ingest_assets = [ingest_landing_zone]
ingest_asset_checks = [reconciliation_check]
