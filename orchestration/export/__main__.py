"""Publish the exports outside Dagster: ``python -m orchestration.export [--manifest PATH]``.

Reads ``GVW_*`` settings like the assets do; used by the benchmark, the crash tests and an
operator who wants to re-publish without a pipeline run.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import duckdb

from orchestration.export.docs import DbtDocs
from orchestration.export.publish import ExportError, ExportOptions, publish_exports
from orchestration.settings import DBT_PROJECT_DIR, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.export", description=__doc__)
    parser.add_argument("--manifest", type=Path, default=DBT_PROJECT_DIR / "target" / "manifest.json",
                        help="dbt manifest with the model docs (default: dbt_project/target/manifest.json)")
    parser.add_argument("--run-id", default=None, help="recorded in the manifest (default: a new uuid)")
    parser.add_argument("--partition-min-rows", type=int, default=None,
                        help="partition datasets from this many rows (default 1,000,000)")
    args = parser.parse_args(argv)

    settings = load_settings()
    overrides = {} if args.partition_min_rows is None else {"partition_min_rows": args.partition_min_rows}
    options = ExportOptions.from_settings(settings, **overrides)
    docs = DbtDocs.load(args.manifest)
    started = time.monotonic()
    # the pipeline's memory limit, spill folder and threads, like every warehouse connection
    # (orchestration.resources.connect_warehouse, without importing Dagster)
    settings.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True, config=settings.duckdb_config())
    try:
        result = publish_exports(conn, options, docs, run_id=args.run_id or str(uuid.uuid4()))
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    datasets = result.manifest["datasets"]
    print(
        f"{'unchanged' if result.unchanged else 'published'} {result.version_id}: {len(datasets)} datasets, "
        f"{sum(d['rows'] for d in datasets.values()):,} rows, "
        f"{sum(d['bytes'] for d in datasets.values()):,} bytes in {time.monotonic() - started:.2f}s "
        f"-> {result.exports_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
