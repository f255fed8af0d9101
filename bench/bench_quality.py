"""Benchmark of the data-quality layer: every GX suite and the audit report at several scales.

    .venv/bin/python bench/bench_quality.py                    # scales 1 and 10
    .venv/bin/python bench/bench_quality.py --scales 1 10 100  # add scale 100 (slow to build)

For each scale a warehouse is built once with the real pipeline (generator, then the
ingestion and dbt assets) and cached under bench/.cache/quality/ (a warehouse that
bench_export.py already built for the same scale is copied instead). Then the quality stage
runs as a Dagster run does: the frames of each table in one batch (one step: one read-only
connection with the pipeline's DuckDB settings and the quality memory cap), then the Data
Docs site once and the audit report (the audit_report asset), into a scratch quality
folder. GX is imported (and its context loaded) before the clock starts: that start-up is
reported on its own. A second pass times the DuckDB part (building the frames) alone.
Wall and CPU time (all threads) and the peak resident memory of this process during the
stage are reported. Results go to stdout (markdown) and bench/.cache/quality/results.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from orchestration.quality.audit import write_audit_report
from orchestration.quality.frames import FRAMES, build_frame
from orchestration.quality.runner import (
    QUALITY_MEMORY_LIMIT,
    build_data_docs,
    gx_context,
    limit_memory,
    validate_frames,
)
from orchestration.resources import connect_warehouse
from orchestration.settings import PROJECT_ROOT, Settings, load_settings

CACHE = PROJECT_ROOT / "bench" / ".cache" / "quality"
EXPORT_CACHE = PROJECT_ROOT / "bench" / ".cache" / "export"


def build_real(data_dir: Path, scale: float) -> float:
    """The reference landing zone at ``scale``, ingested and built by the real assets."""
    import dagster as dg

    from orchestration.assets.ingest import ingest_assets
    from orchestration.assets.warehouse import build_dbt_resource, dbt_warehouse_assets
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
    shutil.rmtree(data_dir / "landing", ignore_errors=True)  # only the warehouse is needed
    return time.monotonic() - started


def warehouse_for(scale: float, rebuild: bool) -> Path:
    data_dir = CACHE / f"pipeline-scale-{scale:g}"
    marker = data_dir / "built.json"
    if rebuild and data_dir.exists():
        shutil.rmtree(data_dir)
    if not marker.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        borrowed = EXPORT_CACHE / f"pipeline-scale-{scale:g}"
        if (borrowed / "built.json").exists() and (borrowed / "warehouse.duckdb").exists():
            shutil.copy(borrowed / "warehouse.duckdb", data_dir / "warehouse.duckdb")
            info = {"source": str(borrowed), "build_seconds": None}
        else:
            info = {"source": "pipeline", "build_seconds": build_real(data_dir, scale)}
        marker.write_text(json.dumps(info))
    return data_dir / "warehouse.duckdb"


def _frames_by_table() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, spec in FRAMES.items():
        grouped.setdefault(spec.table, []).append(name)
    return grouped


def _rows(warehouse: Path) -> dict[str, int]:
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            t: conn.execute(
                "select estimated_size from duckdb_tables() where table_name = ? limit 1", [t]
            ).fetchone()[0]
            for t in ("votes", "workshop_events", "fct_votes", "fct_vote_choices", "fct_participation")
        }
    finally:
        conn.close()


def _settings(warehouse: Path, scratch: Path) -> Settings:
    """The pipeline's settings (GVW_DUCKDB_* of the environment) with a scratch data directory
    whose warehouse is a link to the cached one (DuckDB spills into the scratch folder)."""
    (scratch / "warehouse.duckdb").symlink_to(warehouse)
    return Settings(**{**load_settings().__dict__, "data_dir": scratch})


def _connect(settings: Settings):  # noqa: ANN202 - a Connect for validate_frames
    @contextlib.contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        # As orchestration.assets.quality.quality_connection does.
        conn = connect_warehouse(settings, read_only=True)
        try:
            limit_memory(conn, QUALITY_MEMORY_LIMIT)
            yield conn
        finally:
            conn.close()

    return connect


def _peak_rss_reset() -> None:
    """Reset this process's peak resident memory (Linux: VmHWM), so each scale has its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def bench_scale(scale: float, rebuild: bool) -> dict:
    warehouse = warehouse_for(scale, rebuild)
    with tempfile.TemporaryDirectory(prefix="gvw-bench-quality-") as tmp:
        settings = _settings(warehouse, Path(tmp))
        connect = _connect(settings)
        quality = Path(tmp) / "quality"
        started = time.monotonic()
        gx_context(quality)  # imports GX and loads the context: once per process
        gx_seconds = time.monotonic() - started

        per_frame: dict[str, dict] = {}
        _peak_rss_reset()
        started, cpu = time.monotonic(), time.process_time()
        # As the Dagster checks do: the frames of one table in one batch (one step) ...
        for table, frames in _frames_by_table().items():
            outcomes = validate_frames(
                frames, connect=connect, quality_dir=quality, run_name=f"bench-{scale:g}", docs=False
            )
            for outcome in outcomes:
                per_frame[outcome.frame] = {"seconds": outcome.seconds, "frame_rows": outcome.frame_rows,
                                            "success": outcome.success, "failing": outcome.failing}
        validate_seconds = time.monotonic() - started
        # ... then the audit_report asset: the Data Docs site once, and the report.
        t = time.monotonic()
        pages = build_data_docs(quality)
        docs_seconds = time.monotonic() - t
        t = time.monotonic()
        _, _, report = write_audit_report(connect=connect, quality_dir=quality, run_id=f"bench-{scale:g}")
        audit_seconds = time.monotonic() - t
        stage_seconds, stage_cpu = time.monotonic() - started, time.process_time() - cpu
        peak_mb = _peak_rss_mb()
        docs_files = sum(1 for _ in (quality / "data_docs").rglob("*.html"))

        frame_seconds = {}
        with connect() as conn:
            for name, spec in FRAMES.items():
                t = time.monotonic()
                build_frame(conn, spec)
                frame_seconds[name] = time.monotonic() - t
    for name, seconds in frame_seconds.items():
        per_frame[name]["duckdb_seconds"] = round(seconds, 3)
    return {
        "scale": scale,
        "rows": _rows(warehouse),
        "frames": len(FRAMES),
        "gx_startup_seconds": round(gx_seconds, 2),
        "stage_seconds": round(stage_seconds, 2),
        "stage_cpu_seconds": round(stage_cpu, 2),
        "stage_peak_rss_mb": peak_mb,
        "validate_seconds": round(validate_seconds, 2),
        "duckdb_seconds": round(sum(frame_seconds.values()), 2),
        "data_docs_seconds": round(docs_seconds, 2),
        "data_docs_result_pages": pages,
        "audit_report_seconds": round(audit_seconds, 2),
        "all_accounted_for": report["accounted_for"]["all_records_accounted_for"],
        "figures_follow_from_raw": report["published_figures"]["all_match"],
        "failed_frames": {n: f["failing"] for n, f in per_frame.items() if not f["success"]},
        "data_docs_pages": docs_files,
        "per_frame": per_frame,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached warehouses")
    args = parser.parse_args(argv)
    os.environ.setdefault("GVW_PII_SALT", "bench-salt")

    results = [bench_scale(s, args.rebuild) for s in args.scales]
    print("| scale | raw votes | vote choices | frames | quality stage (s) | CPU (s) | peak RSS (MB) "
          "| of which DuckDB (s) | Data Docs (s) | audit report (s) | GX start-up (s) | slowest frames |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results:
        slowest = sorted(r["per_frame"].items(), key=lambda kv: -kv[1]["seconds"])[:3]
        print(f"| {r['scale']:g} | {r['rows']['votes']:,} | {r['rows']['fct_vote_choices']:,} | {r['frames']} | "
              f"{r['stage_seconds']:.1f} | {r['stage_cpu_seconds']:.1f} | {r['stage_peak_rss_mb']:,} | "
              f"{r['duckdb_seconds']:.1f} | {r['data_docs_seconds']:.1f} | {r['audit_report_seconds']:.1f} | "
              f"{r['gx_startup_seconds']:.1f} | "
              + ", ".join(f"{n} {f['seconds']:.1f}s" for n, f in slowest) + " |")
        if r["failed_frames"]:
            print(f"  scale {r['scale']:g}: failed frames {r['failed_frames']}", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
