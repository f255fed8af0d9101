"""Benchmark of the BI export: time, CPU, memory and size of one publish at several scales.

    python bench/bench_export.py                       # scales 1 and 10, real pipeline
    python bench/bench_export.py --scales 1 10 100     # add scale 100 (slow upstream)
    python bench/bench_export.py --synthetic --scales 1 10 100
    python bench/bench_export.py --scales 100 --source 100=bench/.cache/quality/pipeline-scale-100

For each scale the warehouse is built once and cached under bench/.cache/export/:
by default with the real pipeline (the generator, then the ingestion and dbt assets), or with
``--synthetic`` from the test fixture's mart tables (same columns, N votes = 21,772 x S),
which needs neither ingestion nor dbt; ``--source S=DIR`` takes the warehouse of an already
built data directory instead (hard-linked, never written).

Every measurement is one publish in a fresh process (like the pipeline's export step), with
the pipeline's DuckDB settings (``GVW_DUCKDB_MEMORY_LIMIT``, ``GVW_DUCKDB_THREADS``):

- ``full``: into an empty exports folder (every dataset written, checked, hashed), ``--repeat``
  times, the median reported;
- ``rerun``: again on the same folder with nothing changed (must write nothing);
- ``zstd``: one full publish with zstd compression.

Wall time, CPU time (the process and its DuckDB threads) and the memory the publish added
(peak resident set minus the resident set before it) come from the child itself. Results go
to stdout (markdown) and bench/.cache/export/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from orchestration.settings import PROJECT_ROOT

CACHE = PROJECT_ROOT / "bench" / ".cache" / "export"
REFERENCE_VOTES = 21_772


def build_real(data_dir: Path, scale: float) -> tuple[Path, float]:
    """The reference landing zone at ``scale``, ingested and built by the real assets."""
    import dagster as dg

    from orchestration.assets.ingest import ingest_assets
    from orchestration.assets.warehouse import build_dbt_resource, dbt_project, dbt_warehouse_assets
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


def link_source(data_dir: Path, source: Path) -> tuple[Path, float]:
    """The warehouse of an already built data directory, hard-linked (copied across devices)."""
    warehouse = source / "warehouse.duckdb"
    if not warehouse.is_file():
        raise SystemExit(f"no warehouse.duckdb in {source}")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        os.link(warehouse, data_dir / "warehouse.duckdb")
    except OSError:
        shutil.copy2(warehouse, data_dir / "warehouse.duckdb")
    from orchestration.dbt_project import dbt_project

    return Path(dbt_project.manifest_path), 0.0


def warehouse_for(scale: float, synthetic: bool, rebuild: bool, source: Path | None) -> tuple[Path, Path, float | None]:
    kind = "synthetic" if synthetic else "source" if source else "pipeline"
    data_dir = CACHE / f"{kind}-scale-{scale:g}"
    marker = data_dir / "built.json"
    if (rebuild or source) and data_dir.exists():
        shutil.rmtree(data_dir)
    if marker.exists():
        info = json.loads(marker.read_text())
        return data_dir, Path(info["manifest"]), None
    data_dir.mkdir(parents=True, exist_ok=True)
    if source:
        manifest, took = link_source(data_dir, source)
    else:
        manifest, took = (build_synthetic if synthetic else build_real)(data_dir, scale)
    marker.write_text(json.dumps({"manifest": str(manifest), "build_seconds": took}))
    return data_dir, manifest, took


# --- one publish, in a child process -------------------------------------------------------

def _rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(data_dir: Path, manifest_path: Path, exports: Path, compression: str, run_id: str) -> None:
    """One publish with the pipeline's settings; prints its measures as JSON."""
    import duckdb
    import pandas  # noqa: F401  DuckDB imports it on the first parameterised query: not export work

    from orchestration.export import DbtDocs, ExportOptions, publish_exports
    from orchestration.settings import load_settings

    settings = load_settings({**os.environ, "GVW_DATA_DIR": str(data_dir)})
    settings.duckdb_temp_dir.mkdir(parents=True, exist_ok=True)
    options = ExportOptions.from_settings(settings, exports_dir=exports, compression=compression, versions_kept=2)
    docs = DbtDocs.load(manifest_path)
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_kb())
            stop.wait(0.02)

    rss_before = _rss_kb()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0, started = os.times(), time.monotonic()
    conn = duckdb.connect(str(settings.warehouse_path), read_only=True, config=settings.duckdb_config())
    try:
        result = publish_exports(conn, options, docs, run_id=run_id)
    finally:
        conn.close()
    seconds, cpu1 = time.monotonic() - started, os.times()
    stop.set()
    sampler.join()
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
        "rss_added_mb": (max(peak[0], _rss_kb()) - rss_before) / 1024,
        "unchanged": result.unchanged,
        "manifest": dict(result.manifest),
    }, default=str))


def publish_once(data_dir: Path, manifest: Path, exports: Path, compression: str, run_id: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(data_dir), str(manifest), str(exports), compression, run_id],
        cwd=PROJECT_ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    if done.returncode != 0:
        raise SystemExit(f"publish failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_scale(scale: float, synthetic: bool, repeat: int, rebuild: bool, source: Path | None) -> dict:
    data_dir, manifest_path, build_seconds = warehouse_for(scale, synthetic, rebuild, source)
    exports = data_dir / "bench_exports"
    full = []
    for i in range(repeat):
        shutil.rmtree(exports, ignore_errors=True)  # an empty folder: everything is published
        full.append(publish_once(data_dir, manifest_path, exports, "snappy", f"bench-{i}"))
        assert not full[-1]["unchanged"]
    rerun = publish_once(data_dir, manifest_path, exports, "snappy", "bench-rerun")
    if not rerun["unchanged"]:
        raise SystemExit(f"scale {scale:g}: a rerun without changes published a new version")
    zstd = publish_once(data_dir, manifest_path, exports, "zstd", "bench-zstd")
    manifest = full[-1]["manifest"]
    datasets = manifest["datasets"]
    row_groups = [f["rows"] / max(f["row_groups"], 1) for d in datasets.values() for f in d["files"] if f["rows"] >= 100_000]
    median = statistics.median(r["seconds"] for r in full)
    return {
        "scale": scale,
        "warehouse": "synthetic" if synthetic else "pipeline",
        "build_seconds": build_seconds,
        "memory_limit": os.environ.get("GVW_DUCKDB_MEMORY_LIMIT") or "1GB (default)",
        "export_seconds_median": median,
        "export_seconds_all": [r["seconds"] for r in full],
        "export_cpu_seconds_all": [r["cpu_seconds"] for r in full],
        "export_rss_added_mb_max": max(r["rss_added_mb"] for r in full),
        "rerun_seconds": rerun["seconds"],
        "rerun_cpu_seconds": rerun["cpu_seconds"],
        "zstd_seconds": zstd["seconds"],
        "rows": sum(d["rows"] for d in datasets.values()),
        "bytes_snappy": sum(d["bytes"] for d in datasets.values()),
        "bytes_zstd": sum(d["bytes"] for d in zstd["manifest"]["datasets"].values()),
        "files": sum(len(d["files"]) for d in datasets.values()),
        "partitioned": {n: d["partitioning"]["source_column"] for n, d in datasets.items() if d["partitioning"]},
        "mean_rows_per_row_group_big_files": round(statistics.mean(row_groups)) if row_groups else None,
        "datasets": {n: {"rows": d["rows"], "bytes": d["bytes"], "files": len(d["files"])} for n, d in datasets.items()},
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        data_dir, manifest, exports, compression, run_id = argv[1:6]
        child(Path(data_dir), Path(manifest), Path(exports), compression, run_id)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--synthetic", action="store_true", help="fixture marts instead of the real pipeline")
    parser.add_argument("--source", action="append", default=[], metavar="S=DIR",
                        help="use the warehouse of an already built data directory for scale S")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached warehouses")
    args = parser.parse_args(argv)
    sources = {float(s.split("=", 1)[0]): Path(s.split("=", 1)[1]).resolve() for s in args.source}
    os.environ.setdefault("GVW_PII_SALT", "bench-salt")  # the ingestion pseudonymises e-mails with it
    os.environ.pop("GVW_TEST_CRASH_AT", None)

    results = [bench_scale(s, args.synthetic, args.repeat, args.rebuild, sources.get(s)) for s in args.scales]
    print("| scale | warehouse | rows | export s (median) | CPU s | RSS added MB | rerun s | zstd s | snappy MB | "
          "zstd MB | files | partitioned | rows/row group |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in results:
        print(f"| {r['scale']:g} | {r['warehouse']} | {r['rows']:,} | {r['export_seconds_median']:.2f} | "
              f"{statistics.median(r['export_cpu_seconds_all']):.2f} | {r['export_rss_added_mb_max']:.0f} | "
              f"{r['rerun_seconds']:.3f} | {r['zstd_seconds']:.2f} | {r['bytes_snappy'] / 1e6:.1f} | "
              f"{r['bytes_zstd'] / 1e6:.1f} | {r['files']} | "
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
