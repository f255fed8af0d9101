"""Ingestion: landing zone (docs: /work/shared/spec/landing-zone.md, docs/contract-decisions.md)
-> DuckDB raw layer (docs/raw-layer.md). No Dagster here: the assets, tests and the benchmark
all call :func:`ingest_landing_zone` on a DuckDB connection.
"""

from orchestration.ingest.core import ingest_landing_zone, raw_totals
from orchestration.ingest.files import LandingFile, list_landing_files
from orchestration.ingest.ledger import WarehouseBusy, file_hashes, read_ledger_hashes
from orchestration.ingest.reconcile import FileReconciliation, Reconciliation, reconcile
from orchestration.ingest.reload import ForgetReport, UnknownDeliveries, forget_deliveries, loaded_file_names
from orchestration.ingest.report import FileReport, IngestReport
from orchestration.ingest.schema import RAW_TABLES, ensure_raw_schema

__all__ = [
    "RAW_TABLES",
    "FileReconciliation",
    "FileReport",
    "ForgetReport",
    "IngestReport",
    "LandingFile",
    "Reconciliation",
    "UnknownDeliveries",
    "WarehouseBusy",
    "ensure_raw_schema",
    "file_hashes",
    "forget_deliveries",
    "ingest_landing_zone",
    "list_landing_files",
    "loaded_file_names",
    "raw_totals",
    "read_ledger_hashes",
    "reconcile",
]
