"""Benchmark: ingestion of the reference landing zone against a bare DuckDB read of the same files.

    python bench/bench_ingest.py [--scales 1 10 100] [--seed 2017]

For each scale the reference generator writes the landing zone once (cached under
``bench/.cache``). Then, each in a fresh database:

- bare read: every votes file through ``read_csv`` (all VARCHAR, rejects kept) and every
  workshop file through ``read_json`` (newline-delimited, errors ignored), into in-memory
  tables: DuckDB reading the bytes, nothing else;
- bare load: the same reads into tables of a database file (the cost of persisting too);
- ingest: ``ingest_landing_zone`` into a database file (hashing, ledger, every record rule,
  quarantine, outcomes, one transaction per file), its outcomes checked against the answer
  key; then a rerun with nothing new.

Target: ingest <= 2x the bare read at scale 100. Prints one row per scale.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from orchestration.settings import PROJECT_ROOT

CACHE = PROJECT_ROOT / "bench" / ".cache"
TARGET_RATIO = 2.0


def landing_zone(scale: float, seed: int) -> Path:
    """The generated landing zone of ``scale`` (generated once, then reused)."""
    from orchestration.generate import generate_landing_zone

    out = CACHE / f"ingest_scale{scale:g}_seed{seed}"
    if not (out / "expected.json").exists():
        started = time.perf_counter()
        generate_landing_zone(out, scale=scale, seed=seed, overwrite=True)
        print(f"  generated scale {scale:g} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return out


def bare_read(conn: duckdb.DuckDBPyConnection, landing: Path, *, persistent: bool) -> float:
    kind = "table" if persistent else "temp table"
    started = time.perf_counter()
    for i, path in enumerate(sorted((landing / "votes").glob("*.csv"))):
        conn.execute(f"create or replace {kind} bare_votes_{i} as select * from read_csv($path, header = true, "
                     "all_varchar = true, delim = ',', quote = '\"', escape = '\"', store_rejects = true)",
                     {"path": str(path)})
    for i, path in enumerate(sorted((landing / "workshops").glob("*.jsonl"))):
        conn.execute(f"create or replace {kind} bare_events_{i} as select * from read_json($path, "
                     "format = 'newline_delimited', ignore_errors = true)", {"path": str(path)})
    return time.perf_counter() - started


def run_scale(scale: float, seed: int) -> dict:
    from orchestration.ingest import ingest_landing_zone

    root = landing_zone(scale, seed)
    landing = root / "landing"
    expected = json.loads((root / "expected.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
    records = expected["records"]["votes"] + expected["records"]["workshops"]

    with tempfile.TemporaryDirectory(prefix="gvw_bench_") as tmp:
        memory = duckdb.connect()
        t_read = bare_read(memory, landing, persistent=False)
        memory.close()
        disk = duckdb.connect(str(Path(tmp) / "bare.duckdb"))
        t_load = bare_read(disk, landing, persistent=True)
        disk.close()

        conn = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"))
        started = time.perf_counter()
        report = ingest_landing_zone(conn, landing, salt="bench-salt")
        t_ingest = time.perf_counter() - started
        started = time.perf_counter()
        rerun = ingest_landing_zone(conn, landing, salt="bench-salt")
        t_rerun = time.perf_counter() - started
        conn.close()

    for source in ("votes", "workshops"):
        want = {k: n for k, n in expected["outcomes"][source].items() if n}
        if report.totals[source] != want:
            raise SystemExit(f"scale {scale:g}: {source} outcomes differ from expected.json: "
                             f"{report.totals[source]} != {want}")
    if rerun.files_read:
        raise SystemExit(f"scale {scale:g}: the rerun read {rerun.files_read} file(s)")
    return {"scale": scale, "files": report.files_seen, "mb": size / 1e6, "records": records, "read": t_read,
            "load": t_load, "ingest": t_ingest, "rerun": t_rerun}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args(argv)

    # DuckDB's Python client imports pandas on the first bound parameter: pay it up front,
    # not inside the first timing
    duckdb.connect().execute("select $x", {"x": 1}).fetchall()
    print(f"{'scale':>6} {'files':>5} {'MB':>8} {'records':>10} {'bare read':>10} {'bare load':>10} "
          f"{'ingest':>8} {'x read':>7} {'x load':>7} {'rerun':>7}")
    rows = []
    for scale in args.scales:
        r = run_scale(scale, args.seed)
        rows.append(r)
        print(f"{r['scale']:>6g} {r['files']:>5} {r['mb']:>8.1f} {r['records']:>10,} {r['read']:>9.2f}s "
              f"{r['load']:>9.2f}s {r['ingest']:>7.2f}s {r['ingest'] / r['read']:>6.2f}x "
              f"{r['ingest'] / r['load']:>6.2f}x {r['rerun']:>6.2f}s", flush=True)
    largest = rows[-1]
    ratio = largest["ingest"] / largest["read"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"scale {largest['scale']:g}: ingest {ratio:.2f}x the bare read ({verdict} the {TARGET_RATIO:g}x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
