"""Benchmark: ingestion of the reference landing zone against a bare DuckDB read of the same files.

    python bench/bench_ingest.py [--scales 1 10 100] [--seed 2017]

For each scale the reference generator writes the landing zone once (cached under
``bench/.cache``). Then, each in a fresh database:

- bare read: every votes file through ``read_csv`` (all VARCHAR, rejects kept) and every
  workshop file through ``read_json`` (newline-delimited, errors ignored), into in-memory
  tables: DuckDB reading the bytes, nothing else (DuckDB's default settings);
- bare load: the same reads into tables of a database file (the cost of persisting too);
- ingest: ``ingest_landing_zone`` into a database file (hashing, ledger, every record rule,
  quarantine, outcomes, one transaction per file), on a connection with the pipeline's
  DuckDB settings (``Settings.duckdb_config()``: memory limit, spill directory), in a child
  process of its own so that its CPU time and peak memory are its own; its outcomes are
  checked against the answer key; then a rerun with nothing new.

Target: ingest <= 2x the bare read at scale 100. Prints one row per scale and the load
average (other processes competing for the CPU inflate every wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from orchestration.settings import PROJECT_ROOT

CACHE = PROJECT_ROOT / "bench" / ".cache"
TARGET_RATIO = 2.0

# Run in a child process: the ingest and its rerun on a fresh warehouse, as JSON on stdout.
_INGEST_CHILD = """
import dataclasses, json, resource, sys, time
from pathlib import Path
import duckdb
from orchestration.ingest import ingest_landing_zone
from orchestration.resources import connect_warehouse
from orchestration.settings import load_settings

landing, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
settings = dataclasses.replace(load_settings(), data_dir=data_dir)
duckdb.connect().execute("select $x", {"x": 1}).fetchall()   # pandas import on the first parameter
conn = connect_warehouse(settings)

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def peak_mb():
    # VmHWM where there is one: Linux carries ru_maxrss over from the parent across exec
    try:
        return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

started, cpu0 = time.perf_counter(), cpu()
report = ingest_landing_zone(conn, landing, salt="bench-salt")
ingest, ingest_cpu = time.perf_counter() - started, cpu() - cpu0
started = time.perf_counter()
rerun = ingest_landing_zone(conn, landing, salt="bench-salt")
rerun_s = time.perf_counter() - started
conn.close()
print(json.dumps({"ingest": ingest, "ingest_cpu": ingest_cpu, "rerun": rerun_s, "totals": report.totals,
                  "files": report.files_seen, "rerun_files_read": rerun.files_read,
                  "peak_mb": peak_mb(),
                  "memory_limit": settings.duckdb_memory_limit}))
"""


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


def ingest_in_child(landing: Path, data_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _INGEST_CHILD, str(landing), str(data_dir)], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_scale(scale: float, seed: int) -> dict:
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
        result = ingest_in_child(landing, Path(tmp) / "data")

    for source in ("votes", "workshops"):
        want = {k: n for k, n in expected["outcomes"][source].items() if n}
        if result["totals"][source] != want:
            raise SystemExit(f"scale {scale:g}: {source} outcomes differ from expected.json: "
                             f"{result['totals'][source]} != {want}")
    if result["rerun_files_read"]:
        raise SystemExit(f"scale {scale:g}: the rerun read {result['rerun_files_read']} file(s)")
    return {"scale": scale, "files": result["files"], "mb": size / 1e6, "records": records, "read": t_read,
            "load": t_load, "ingest": result["ingest"], "cpu": result["ingest_cpu"], "peak_mb": result["peak_mb"],
            "rerun": result["rerun"], "memory_limit": result["memory_limit"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1, 10, 100])
    parser.add_argument("--seed", type=int, default=2017)
    args = parser.parse_args(argv)

    # DuckDB's Python client imports pandas on the first bound parameter: pay it up front,
    # not inside the first timing
    duckdb.connect().execute("select $x", {"x": 1}).fetchall()
    load_before = os.getloadavg()
    print(f"{'scale':>6} {'files':>5} {'MB':>8} {'records':>10} {'bare read':>10} {'bare load':>10} "
          f"{'ingest':>8} {'x read':>7} {'x load':>7} {'CPU':>7} {'peak MB':>8} {'rerun':>7}")
    rows = []
    for scale in args.scales:
        r = run_scale(scale, args.seed)
        rows.append(r)
        print(f"{r['scale']:>6g} {r['files']:>5} {r['mb']:>8.1f} {r['records']:>10,} {r['read']:>9.2f}s "
              f"{r['load']:>9.2f}s {r['ingest']:>7.2f}s {r['ingest'] / r['read']:>6.2f}x "
              f"{r['ingest'] / r['load']:>6.2f}x {r['cpu']:>6.1f}s {r['peak_mb']:>8.0f} {r['rerun']:>6.2f}s",
              flush=True)
    largest = rows[-1]
    ratio = largest["ingest"] / largest["read"]
    verdict = "meets" if ratio <= TARGET_RATIO else "misses"
    print(f"scale {largest['scale']:g}: ingest {ratio:.2f}x the bare read ({verdict} the {TARGET_RATIO:g}x target); "
          f"ingest DuckDB memory limit {largest['memory_limit']}, CPU = user + system of the ingest process")
    load_after = os.getloadavg()
    print(f"load average {' '.join(f'{x:.2f}' for x in load_before)} -> {' '.join(f'{x:.2f}' for x in load_after)} "
          f"on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
