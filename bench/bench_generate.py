"""Time the reference landing-zone generator at several scales.

    .venv/bin/python bench/bench_generate.py            # scales 1, 10, 100
    .venv/bin/python bench/bench_generate.py 0.5 2      # other scales

Each scale is generated into its own temporary directory, removed afterwards.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from orchestration.generate import generate_landing_zone


def bench(scale: float, seed: int = 2017) -> dict:
    with tempfile.TemporaryDirectory(prefix="gvw-bench-") as tmp:
        out = Path(tmp)
        start = time.perf_counter()
        key = generate_landing_zone(out, scale=scale, seed=seed)
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (out / "landing").rglob("*") if p.is_file())
        files = sum(1 for p in (out / "landing").rglob("*") if p.is_file())
    return {
        "scale": scale, "seconds": seconds, "bytes": size, "files": files,
        "votes": key["figures"]["votes"], "workshops": key["figures"]["workshops"],
        "vote_records": key["records"]["votes"], "workshop_lines": key["records"]["workshops"],
    }


def main(argv: list[str]) -> None:
    scales = [float(a) for a in argv] or [1.0, 10.0, 100.0]
    header = f"{'scale':>7} {'seconds':>8} {'MB':>8} {'files':>6} {'votes':>10} {'workshops':>9} " \
             f"{'vote recs':>10} {'ws lines':>10}"
    print(header)
    print("-" * len(header))
    for scale in scales:
        r = bench(scale)
        print(f"{r['scale']:>7g} {r['seconds']:>8.1f} {r['bytes'] / 1e6:>8.1f} {r['files']:>6} {r['votes']:>10,} "
              f"{r['workshops']:>9,} {r['vote_records']:>10,} {r['workshop_lines']:>10,}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
