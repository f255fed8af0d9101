"""Ingestion assets: the landing zone into the five ``raw`` tables, and their reconciliation.

One multi-asset writes all five tables (they change together, file by file, in one
transaction per file); dbt sources link to these asset keys through meta.dagster.asset_key.
"""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.

import dagster as dg
import duckdb
from dagster._core.definitions.data_version import CODE_VERSION_TAG
from pydantic import Field

from orchestration.ingest import (
    ForgetReport,
    IngestReport,
    forget_deliveries,
    list_landing_files,
    loaded_file_names,
    reconcile,
)
from orchestration.ingest import ingest_landing_zone as run_ingestion
from orchestration.resources import PIPELINE_OWNERS, WAREHOUSE_POOL, WarehouseResource

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


INGEST_OP_NAME = "ingest_landing_zone"
# Transient I/O only is retried (a locked or briefly unreadable file): waits 2 s, 6 s, 14 s.
# Everything else fails at once (dg.Failure(allow_retries=False), see _run).
INGEST_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL)
TRANSIENT_ERRORS = (OSError, duckdb.IOException)


class IngestConfig(dg.Config):
    """Run config of the ingestion: optionally reload (backfill) landing files first."""

    reload_files: list[str] = Field(
        default=[],
        description="Landing files to read again although already loaded, as in the ledger's file_name "
                    "(relative to landing/, e.g. 'votes/export_2017-09-01.csv'). Their earlier records are "
                    "deleted first; the result equals a first load.")
    reload_all: bool = Field(default=False, description="Reload every landing file (a full backfill).")
    force: bool = Field(
        default=False,
        description="Rebuild everything downstream even when no landing file is new and every downstream "
                    "asset is up to date (by default such a run stops after the ingestion).")


def reload_run_config(files: list[str] | None) -> dict:
    """Run config of a run that reloads ``files`` (ledger file names, relative to landing/), or
    every file when ``files`` is None; for any job or ``materialize`` call that includes the
    ``ingest_landing_zone`` multi-asset."""
    if files is not None and not files:
        raise ValueError("no file to reload: name at least one file, or None for all")
    config = {"reload_all": True} if files is None else {"reload_files": list(files)}
    return {"ops": {INGEST_OP_NAME: {"config": config}}}


def _forget_for_reload(conn: duckdb.DuckDBPyConnection, config: IngestConfig, landing_dir) -> ForgetReport | None:
    """Forget the deliveries the config asks to reload; unknown names fail without retry.

    Known names are the ledger's and the landing zone's: a retried attempt finds a file
    forgotten by the previous attempt (and not read again yet) in the landing zone only.
    """
    if not config.reload_all and not config.reload_files:
        return None
    if config.reload_all:
        return forget_deliveries(conn, None)
    in_ledger = set(loaded_file_names(conn))
    known = in_ledger | {f.file_name for f in list_landing_files(landing_dir)}
    unknown = sorted(set(config.reload_files) - known)
    if unknown:
        raise dg.Failure(
            description=f"unknown reload file(s): {', '.join(unknown)}. Known file names (ledger and landing "
                        f"zone): {', '.join(sorted(known)) or '(none)'}",
            metadata={"unknown_files": dg.MetadataValue.json(unknown),
                      "known_files": dg.MetadataValue.json(sorted(known))},
            allow_retries=False,
        )
    # a name only in the landing zone has nothing to forget: the run reads it anyway
    return forget_deliveries(conn, sorted(set(config.reload_files) & in_ledger))


def _downstream_up_to_date(context: dg.AssetExecutionContext) -> tuple[bool, str]:
    """Whether every asset this run would rebuild after the ingestion is already current.

    An asset is current when its latest materialization came after the latest one of the raw
    layer (so it was built from the same raw data) and, for assets with a code version (the dbt
    models: their SQL checksum), with the code version defined now. A run that failed or was
    stopped after the ingestion leaves its downstream assets older than the raw layer, so the
    next run rebuilds them even when no file is new.
    """
    raw_keys = set(RAW_ASSET_KEYS.values())
    asset_layer = context.job_def.asset_layer
    downstream = sorted(set(asset_layer.selected_asset_keys) - raw_keys, key=lambda k: k.to_user_string())
    if not downstream:
        # The run asked for the raw layer only: materialize it (with this run's metadata).
        return False, "only the raw layer is selected"
    records = {r.asset_entry.asset_key: r.asset_entry
               for r in context.instance.get_asset_records([*raw_keys, *downstream])}
    raw_ids = [records[k].last_materialization_record.storage_id for k in raw_keys
               if k in records and records[k].last_materialization_record]
    if len(raw_ids) < len(raw_keys):
        return False, "the raw layer was never materialized in this instance"
    raw_latest = max(raw_ids)
    for key in downstream:
        entry = records.get(key)
        record = entry.last_materialization_record if entry else None
        if record is None:
            return False, f"{key.to_user_string()} was never materialized"
        if record.storage_id < raw_latest:
            return False, f"{key.to_user_string()} is older than the raw layer"
        code_version = asset_layer.get(key).code_version
        materialization = record.event_log_entry.asset_materialization
        built_with = materialization.tags.get(CODE_VERSION_TAG) if materialization and materialization.tags else None
        if code_version is not None and built_with != code_version:
            return False, f"{key.to_user_string()} was built by another code version"
    return True, f"{len(downstream)} downstream assets are current"


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
    name=INGEST_OP_NAME,
    # skippable: a run with nothing new yields no materialization, and Dagster skips every
    # step downstream (dbt, checks, exports) instead of rebuilding identical results.
    specs=[dg.AssetSpec(key, description=_DESCRIPTIONS[name], group_name=INGEST_GROUP, kinds={"duckdb"},
                         owners=PIPELINE_OWNERS, skippable=True)
           for name, key in RAW_ASSET_KEYS.items()],
    can_subset=False,
    retry_policy=INGEST_RETRY_POLICY,
    pool=WAREHOUSE_POOL,
    description="Load new landing files (votes CSV, workshop JSONL) into the raw layer: each record accepted "
                "or quarantined with a reason code; outcomes recomputed over everything loaded. Run config "
                "reload_files / reload_all reads already loaded files again (backfill).",
)
def ingest_landing_zone(context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource):
    try:
        settings = warehouse.settings()
        salt = settings.pii_salt()
        with warehouse.connect() as conn:
            forgotten = _forget_for_reload(conn, config, settings.landing_dir)
            if forgotten is not None:
                context.log.info(f"reload: forgot {forgotten.ledger_rows} delivery(ies) of "
                                 f"{len(forgotten.file_names)} file(s), {forgotten.records} record(s); "
                                 f"{forgotten.outcomes_reset} other record(s) to recompute")
            report = run_ingestion(conn, settings.landing_dir, salt=salt, run_id=context.run.run_id)
            row_counts = {name: conn.execute(f"select count(*) from raw.{name}").fetchone()[0]  # our table names
                          for name in RAW_ASSET_KEYS}
    except dg.Failure:
        raise
    except TRANSIENT_ERRORS:
        raise   # the retry policy tries again
    except Exception as exc:
        # a contract violation (bad data contract, constraint, catalog, ValueError...):
        # retrying cannot help
        raise dg.Failure(description=f"ingestion failed ({type(exc).__name__}): {exc}",
                         allow_retries=False) from exc
    context.log.info(report.summary())
    for f in report.read_files:
        if f.file_status != "loaded":
            context.log.warning(f"{f.file_name}: {f.file_status}: {f.message}")
    reloaded = forgotten.file_names if forgotten is not None else []
    raw_unchanged = forgotten is None and report.files_read == 0 and not report.earlier_outcomes_changed
    if raw_unchanged and not config.force:
        current, why = _downstream_up_to_date(context)
        if current:
            # Nothing to rebuild: record that the landing zone was looked at, materialize nothing.
            context.log.info(f"no new landing file and {why}: downstream steps are skipped "
                             "(run config force: true rebuilds them)")
            yield dg.AssetObservation(
                asset_key=RAW_ASSET_KEYS["load_ledger"],
                metadata={"files_seen": report.files_seen, "files_read": 0,
                          "skipped_downstream": dg.MetadataValue.text(why),
                          "dagster/row_count": row_counts["load_ledger"]})
            return
        context.log.info(f"no new landing file, but {why}: rebuilding downstream")
    for name, key in RAW_ASSET_KEYS.items():
        meta = _metadata(report, name, row_counts[name], str(settings.warehouse_path))
        meta["reloaded_files"] = dg.MetadataValue.json(reloaded)
        yield dg.MaterializeResult(asset_key=key, metadata=meta)


@dg.asset_check(
    asset=RAW_ASSET_KEYS["load_ledger"],
    name="reconciliation",
    blocking=True,
    pool=WAREHOUSE_POOL,
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
