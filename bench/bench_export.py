"""Benchmark of the BI export: time and size of one publish at several scales.

    python bench/bench_export.py                       # scales 1 and 10, real pipeline
    python bench/bench_export.py --scales 1 10 100     # add scale 100 (slow upstream)
    python bench/bench_export.py --synthetic --scales 1 10 100

For each scale the warehouse is built once and cached under bench/.cache/export/:
by default with the real pipeline (the generator, then the ingestion and dbt assets), or with
``--synthetic`` from the test fixture's mart tables (same columns, N votes = 21,772 x S),
which needs neither ingestion nor dbt. Then the export is published ``--repeat`` times into
a scratch exports folder (snappy, and once with zstd) and timed; the median is reported
with the size of every dataset. Results go to stdout (markdown) and bench/.cache/export/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb

from orchestration.export import DbtDocs, ExportOptions, publish_exports
from orchestration.settings import PROJECT_ROOT

CACHE = PROJECT_ROOT / "bench" / ".cache" / "export"
REFERENCE_VOTES = 21_772

def build_real(data_dir: Path, scale: float) -> tuple[Path, float]:
    """The reference landing zone at ``scale``, ingested and built by the real assets."""
    import dagster as dg

    from orchestration.assets.ingest import ingest_assets
    from orchestration.assets.warehouse import build_dbt_resource, dbt_warehouse_assets, dbt_project
    from orchestration.generate import generate_landing_zone
    from orchestration.resources import WarehouseResource

    started = time.monotonic()
    generate_landing_zone(data_dir, scale=scale, seed=2017)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [*ingest_assets, dbt_warehouse_assets],
            resources={"warehouse": WarehouseResource(data_dir=str(data_dir)), "dbt": build_dbt_resource()},
            instance=instance,
            raise_on_error=False,
        )
    if not result.success:
        raise SystemExit(f"the pipeline failed at scale {scale:g} (run {result.run_id})")
    return dbt_project.manifest_path, time.monotonic() - started


def build_synthetic(data_dir: Path, scale: float) -> tuple[Path, float]:
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from test_export import build_fixture_manifest, build_fixture_warehouse

    started = time.monotonic()
    data_dir.mkdir(parents=True, exist_ok=True)
    warehouse = data_dir / "warehouse.duckdb"
    build_fixture_warehouse(warehouse, n_votes=int(REFERENCE_VOTES * scale))
    manifest = data_dir / "dbt_manifest.json"
    build_fixture_manifest(warehouse, manifest)
    return manifest, time.monotonic() - started


def warehouse_for(scale: float, synthetic: bool, rebuild: bool) -> tuple[Path, Path, float | None]:
    data_dir = CACHE / f"{'synthetic' if synthetic else 'pipeline'}-scale-{scale:g}"
    marker = data_dir / "built.json"
    if rebuild and data_dir.exists():
        shutil.rmtree(data_dir)
    if marker.exists():
        info = json.loads(marker.read_text())
        return data_dir, Path(info["manifest"]), None
    data_dir.mkdir(parents=True, exist_ok=True)
    manifest, took = (build_synthetic if synthetic else build_real)(data_dir, scale)
    marker.write_text(json.dumps({"manifest": str(manifest), "build_seconds": took}))
    return data_dir, manifest, took


def publish_once(data_dir: Path, manifest: Path, exports: Path, compression: str) -> tuple[float, dict]:
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        started = time.monotonic()
        result = publish_exports(conn, ExportOptions(exports_dir=exports, compression=compression, versions_kept=2),
                                 DbtDocs.load(manifest), run_id=f"bench-{compression}")
        return time.monotonic() - started, dict(result.manifest)
    finally:
        conn.close()


def bench_scale(scale: float, synthetic: bool, repeat: int, rebuild: bool) -> dict:
    data_dir, manifest_path, build_seconds = warehouse_for(scale, synthetic, rebuild)
    exports = data_dir / "bench_exports"
    shutil.rmtree(exports, ignore_errors=True)
    timings = []
    for _ in range(repeat):
        took, manifest = publish_once(data_dir, manifest_path, exports, "snappy")
        timings.append(took)
    zstd_seconds, zstd_manifest = publish_once(data_dir, manifest_path, exports, "zstd")
    datasets = manifest["datasets"]
    row_groups = [f["rows"] / max(f["row_groups"], 1) for d in datasets.values() for f in d["files"] if f["rows"] >= 100_000]
    return {
        "scale": scale,
        "warehouse": "synthetic" if synthetic else "pipeline",
        "build_seconds": build_seconds,
        "export_seconds_median": statistics.median(timings),
        "export_seconds_all": timings,
        "zstd_seconds": zstd_seconds,
        "rows": sum(d["rows"] for d in datasets.values()),
        "bytes_snappy": sum(d["bytes"] for d in datasets.values()),
        "bytes_zstd": sum(d["bytes"] for d in zstd_manifest["datasets"].values()),
        "files": sum(len(d["files"]) for d in datasets.values()),
        "partitioned": {n: d["partitioning"]["source_column"] for n, d in datasets.items() if d["partitioning"]},
        "mean_rows_per_row_group_big_files": round(statistics.mean(row_groups)) if row_groups else None,
        "datasets": {n: {"rows": d["rows"], "bytes": d["bytes"], "files": len(d["files"])} for n, d in datasets.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--synthetic", action="store_true", help="fixture marts instead of the real pipeline")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached warehouses")
    args = parser.parse_args(argv)
    os.environ.setdefault("GVW_PII_SALT", "bench-salt")  # the ingestion pseudonymises e-mails with it
    os.environ.pop("GVW_TEST_CRASH_AT", None)

    results = [bench_scale(s, args.synthetic, args.repeat, args.rebuild) for s in args.scales]
    print("| scale | warehouse | rows | export s (median) | zstd s | snappy MB | zstd MB | files | partitioned | rows/row group |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        print(f"| {r['scale']:g} | {r['warehouse']} | {r['rows']:,} | {r['export_seconds_median']:.2f} | "
              f"{r['zstd_seconds']:.2f} | {r['bytes_snappy'] / 1e6:.1f} | {r['bytes_zstd'] / 1e6:.1f} | {r['files']} | "
              f"{', '.join(f'{k}({v})' for k, v in r['partitioned'].items()) or '-'} | "
              f"{r['mean_rows_per_row_group_big_files'] or '-'} |")
    for r in results:
        big = sorted(r["datasets"].items(), key=lambda kv: -kv[1]["bytes"])[:4]
        print(f"scale {r['scale']:g}: " + ", ".join(f"{n} {d['rows']:,} rows {d['bytes'] / 1e6:.1f} MB" for n, d in big))
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
