"""Data-quality checks (Great Expectations suites) and the audit report as Dagster definitions.

Every GX suite validated for an asset is an asset check named ``gx_<suite>``; the checks of
one asset run in one step (a multi-asset check), which reads its frames through a read-only
warehouse connection and writes its results under ``$GVW_DATA_DIR/quality``.

* Error-severity checks are ``blocking``: when one fails, Dagster skips everything
  downstream of its asset (the Parquet exports among them), and the step writes the Data
  Docs and the audit report at once, so auditors see the failing run.
* ``gx_workshop_participant_counts`` (a workshop's check-ins differ from its reported
  participants) is a WARNING and never blocks.
* ``quality/audit_report`` (group ``quality``) renders the Data Docs site once for the whole
  run and writes ``audit_report.json`` and ``.html``, after the raw layer and the marts and
  after their blocking checks. A run without that asset renders the Data Docs in each
  check step instead.
"""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dagster as dg
import duckdb
from dagster_dbt import get_asset_key_for_model

from orchestration.assets.warehouse import dbt_warehouse_assets
from orchestration.quality.audit import write_audit_report
from orchestration.quality.frames import DIMENSION_KEYS, FACT_MARTS, FRAMES, MART_TABLES, RAW_TABLES, tables_read
from orchestration.quality.runner import (
    QUALITY_MEMORY_LIMIT,
    ValidationOutcome,
    build_data_docs,
    data_docs_dir,
    limit_memory,
    validate_frames,
)
from orchestration.resources import PIPELINE_OWNERS, WAREHOUSE_POOL, WarehouseResource

QUALITY_GROUP = "quality"
AUDIT_REPORT_KEY = dg.AssetKey([QUALITY_GROUP, "audit_report"])

__all__ = ["AUDIT_REPORT_KEY", "QUALITY_GROUP", "asset_key_of_table", "quality_asset_checks", "quality_assets"]


@contextlib.contextmanager
def quality_connection(warehouse: WarehouseResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """The read-only warehouse connection of the checks and the audit report: the pipeline's
    DuckDB settings, with memory capped at QUALITY_MEMORY_LIMIT (see runner.py)."""
    with warehouse.connect(read_only=True) as conn:
        limit_memory(conn, QUALITY_MEMORY_LIMIT)
        yield conn


def asset_key_of_table(table: str) -> dg.AssetKey:
    """The asset that writes a warehouse table: ``raw/<table>`` or the dbt model's key."""
    if table in RAW_TABLES:
        return dg.AssetKey(["raw", table])
    return get_asset_key_for_model([dbt_warehouse_assets], table)


@dataclass(frozen=True)
class SuiteCheck:
    frame: str  # a key of orchestration.quality.frames.FRAMES
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def name(self) -> str:
        return f"gx_{FRAMES[self.frame].suite}"

    @property
    def blocking(self) -> bool:
        return self.severity == dg.AssetCheckSeverity.ERROR


# What each table is checked with; every mart also gets the personal-data suite.
_RAW_CHECKS = {
    "load_ledger": ["raw_load_ledger"],
    "votes": ["raw_votes_accepted"],
    "vote_quarantine": ["raw_vote_quarantine"],
    "workshop_events": ["raw_workshop_events"],
    "workshop_quarantine": ["raw_workshop_quarantine"],
}


def _checks_by_table() -> dict[str, list[SuiteCheck]]:
    plan: dict[str, list[SuiteCheck]] = {t: [SuiteCheck(f) for f in frames] for t, frames in _RAW_CHECKS.items()}
    for table in FACT_MARTS:
        plan[table] = [SuiteCheck(table)]
    plan["fct_workshops"].append(SuiteCheck("workshop_participant_counts", dg.AssetCheckSeverity.WARN))
    for table in DIMENSION_KEYS:
        plan[table] = [SuiteCheck(table)]
    for table in MART_TABLES:
        plan[table].append(SuiteCheck(f"{table}__personal_data"))
    return plan


def _metadata(outcome: ValidationOutcome) -> dict[str, dg.MetadataValue]:
    metadata: dict[str, dg.MetadataValue] = {
        "suite": dg.MetadataValue.text(outcome.suite),
        "frame": dg.MetadataValue.text(outcome.frame),
        "expectations_evaluated": dg.MetadataValue.int(outcome.evaluated),
        "expectations_failed": dg.MetadataValue.int(outcome.failed),
        "failing_expectations": dg.MetadataValue.text(", ".join(outcome.failing) or "none"),
        "frame_rows": dg.MetadataValue.int(outcome.frame_rows),
        "validation_seconds": dg.MetadataValue.float(outcome.seconds),
    }
    if outcome.docs_page:
        metadata["data_docs_page"] = dg.MetadataValue.path(outcome.docs_page)
    return metadata


def _description(outcome: ValidationOutcome) -> str:
    if outcome.success:
        return f"GX suite {outcome.suite}: all {outcome.evaluated} expectations met."
    return (
        f"GX suite {outcome.suite}: {outcome.failed} of {outcome.evaluated} expectations failed: "
        + ", ".join(outcome.failing)
    )


def _build_checks(table: str, checks: Sequence[SuiteCheck]) -> dg.AssetChecksDefinition:
    asset_key = asset_key_of_table(table)
    # Tables of another layer the frames read (a raw table for a mart's check): the check
    # waits for their assets. Tables of its own layer come from the same step (the ingest
    # multi-asset, the dbt build), and naming them would tie blocking checks into a cycle.
    reads = sorted(
        t for c in checks for t in tables_read(FRAMES[c.frame]) if (t in RAW_TABLES) != (table in RAW_TABLES)
    )
    additional = [dg.AssetDep(asset_key_of_table(t)) for t in reads]
    specs = [
        dg.AssetCheckSpec(
            name=c.name,
            asset=asset_key,
            blocking=c.blocking,
            additional_deps=additional,
            description=f"Great Expectations suite {FRAMES[c.frame].suite} on {table}"
            + ("" if c.blocking else " (warning: never blocks)"),
        )
        for c in checks
    ]

    @dg.multi_asset_check(
        specs=specs,
        name=f"gx_checks_{table}",
        pool=WAREHOUSE_POOL,
        can_subset=True,
        description=f"Great Expectations suites on {table}; results and Data Docs under $GVW_DATA_DIR/quality.",
    )
    def _run(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.AssetCheckResult]:
        settings = warehouse.settings()
        run_id = context.run.run_id
        selected = [c for c in checks if dg.AssetCheckKey(asset_key, c.name) in context.selected_asset_check_keys]
        # The audit report renders the Data Docs once for the whole run, when the run has it.
        job_assets = context.op_execution_context.job_def.asset_layer.executable_asset_keys
        report_renders_docs = AUDIT_REPORT_KEY in job_assets
        outcomes = validate_frames(
            [c.frame for c in selected],
            connect=lambda: quality_connection(warehouse),
            quality_dir=settings.quality_dir,
            run_name=run_id,
            docs=not report_renders_docs,
        )
        blocking_failures = []
        for check, outcome in zip(selected, outcomes, strict=True):
            if not outcome.success and check.blocking:
                blocking_failures.append(outcome.frame)
            yield dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check.name,
                passed=outcome.success,
                severity=check.severity,
                metadata=_metadata(outcome),
                description=_description(outcome),
            )
        if blocking_failures:
            # The audit report asset will be skipped (it is downstream): write it now, so the
            # folder auditors open describes this failing run rather than an older one.
            try:
                if report_renders_docs:  # it will be skipped: render them now
                    build_data_docs(settings.quality_dir)
                write_audit_report(
                    connect=lambda: quality_connection(warehouse),
                    quality_dir=settings.quality_dir,
                    run_id=run_id,
                )
            except Exception:  # noqa: BLE001 - the check result matters more than the report
                context.log.warning("could not write the Data Docs and audit report after a failed check",
                                    exc_info=True)

    return _run


quality_asset_checks: list[dg.AssetChecksDefinition] = [
    _build_checks(table, checks) for table, checks in _checks_by_table().items()
]


@dg.asset(
    key=AUDIT_REPORT_KEY,
    group_name=QUALITY_GROUP,
    owners=PIPELINE_OWNERS,
    pool=WAREHOUSE_POOL,
    deps=[asset_key_of_table(t) for t in (*RAW_TABLES, *MART_TABLES)],
    description=(
        "The audit and reconciliation report (quality/audit_report.html and .json): every delivered file "
        "reconciled, quarantine by reason, incomplete workshops, participant-count mismatches, the headline "
        "figures recomputed from raw, and the latest result of every GX suite."
    ),
    kinds={"html", "json"},
)
def audit_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()
    build_data_docs(settings.quality_dir)  # this run's result pages, the suites and the index
    json_path, html_path, report = write_audit_report(
        connect=lambda: quality_connection(warehouse),
        quality_dir=settings.quality_dir,
        run_id=context.run.run_id,
    )
    accounted = report["accounted_for"]
    return dg.MaterializeResult(
        metadata={
            "all_records_accounted_for": dg.MetadataValue.bool(accounted["all_records_accounted_for"]),
            "reconciliation": dg.MetadataValue.text(accounted["statement"]),
            "files": dg.MetadataValue.int(accounted["files"]),
            "records_read": dg.MetadataValue.int(accounted["records_read"]),
            "published_figures_follow_from_raw": dg.MetadataValue.bool(report["published_figures"]["all_match"]),
            "suites_failed": dg.MetadataValue.int(sum(1 for c in report["quality_checks"] if not c["success"])),
            "report_html": dg.MetadataValue.path(str(html_path)),
            "report_json": dg.MetadataValue.path(str(json_path)),
            "data_docs": dg.MetadataValue.path(str(data_docs_dir(settings.quality_dir) / "index.html")),
        }
    )


quality_assets: list[dg.AssetsDefinition] = [audit_report]
