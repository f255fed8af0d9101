"""The benchmark floor (bench/floor.sql) does the pipeline's real work, and the harness
(bench/run.py) measures real processes.

The floor is checked against the generator's answer key (an independent oracle): on a small
reference landing zone its headline figures, its per-outcome record counts (every reason
code, duplicates, superseded versions, incomplete workshops), its global option votes and
Borda points must all equal ``expected.json``. A floor that skipped a check would differ.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from orchestration.generate import generate_landing_zone
from orchestration.settings import PROJECT_ROOT

SCALE = 0.02


def _load_bench_run():
    """bench/run.py as a module (bench/ is scripts, not a package)."""
    path = PROJECT_ROOT / "bench" / "run.py"
    spec = importlib.util.spec_from_file_location("gvw_bench_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


bench = _load_bench_run()


@pytest.fixture(scope="module")
def floor_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    """The floor executed on a freshly generated scale-0.02 landing zone."""
    root = tmp_path_factory.mktemp("floor")
    key = generate_landing_zone(root / "zone", scale=SCALE, seed=2017)
    out = root / "out"
    report = bench.run_floor_script(root / "zone" / "landing", out, pii_salt="test-salt")
    return report, key, out


def test_floor_headline_figures_equal_the_answer_key(floor_run) -> None:
    report, key, _ = floor_run
    assert report["figures"] == key["figures"]


def test_floor_outcome_counts_equal_the_answer_key(floor_run) -> None:
    report, key, _ = floor_run
    for source in ("votes", "workshops"):
        expected = {outcome: n for outcome, n in key["outcomes"][source].items() if n}
        assert report["outcomes"][source] == expected, source
    # every record has exactly one outcome
    assert sum(report["outcomes"]["votes"].values()) == key["records"]["votes"]
    assert sum(report["outcomes"]["workshops"].values()) == key["records"]["workshops"]
    # the generator plants every reason code at every scale: the floor must have found each
    assert {"malformed_row", "missing_column", "invalid_choice", "duplicate", "superseded"} <= set(
        report["outcomes"]["votes"])
    assert {"malformed_json", "invalid_date", "superseded", "incomplete_workshop"} <= set(
        report["outcomes"]["workshops"])


def test_floor_global_rankings_equal_the_answer_key(floor_run) -> None:
    report, key, _ = floor_run
    votes = {option: n for per_q in key["votes_by_option"].values() for option, n in per_q.items()}
    points = {option: n for per_q in key["workshop_borda_points"].values() for option, n in per_q.items()}
    assert report["votes_by_option"] == votes
    assert report["workshop_borda_points"] == points


def test_floor_exports_parquet_and_keeps_no_email_in_clear(floor_run) -> None:
    report, key, out = floor_run
    conn = duckdb.connect()
    try:
        headline = conn.execute("select votes, participants from read_parquet($p)",
                                {"p": str(out / "headline_figures.parquet")}).fetchone()
        assert headline == (key["figures"]["votes"], key["figures"]["participants"])
        n_votes = conn.execute("select count(*) from read_parquet($p)", {"p": str(out / "votes.parquet")}).fetchone()[0]
        assert n_votes == key["figures"]["votes"]
        ranks = conn.execute(
            "select count(distinct scope_type), count(*) filter (where suppressed) from read_parquet($p)",
            {"p": str(out / "theme_rankings.parquet")}).fetchone()
        assert ranks[0] == 6  # global, region, library_type, age_group, experience_band, language
        assert ranks[1] > 0   # small cells outside the global scope are hidden at this scale
    finally:
        conn.close()
    conn = duckdb.connect(str(out / "floor.duckdb"), read_only=True)
    try:
        keys, with_at, hex_keys = conn.execute(
            "select count(respondent_key), count(*) filter (where contains(respondent_key, '@')), "
            "count(*) filter (where regexp_full_match(respondent_key, '[0-9a-f]{64}')) from raw_votes").fetchone()
        assert keys > 0 and with_at == 0 and hex_keys == keys  # salted SHA-256 hex digests only
    finally:
        conn.close()
    assert report["parquet_bytes"] > 0


def test_floor_worker_process_prints_its_report(floor_run, tmp_path: Path) -> None:
    """`bench/run.py --floor-worker` (what the benchmark times) prints the same report."""
    _, key, _ = floor_run
    landing = tmp_path / "zone"
    generate_landing_zone(landing, scale=SCALE, seed=2017)
    run = bench.run_measured("floor", [sys.executable, str(PROJECT_ROOT / "bench" / "run.py"), "--floor-worker",
                                       str(landing / "landing"), str(tmp_path / "out")],
                             bench.child_env(), tmp_path / "floor.log", timeout=300)
    assert run.ok, (tmp_path / "floor.log").read_text()
    lines = [line for _, line in run.lines if line.startswith("FLOOR-RESULT ")]
    report = json.loads(lines[0][len("FLOOR-RESULT "):])
    assert bench.check_against_key(report["figures"], report["outcomes"], key) == []
    assert run.cpu_s > 0 and run.maxrss_mb > 0


def test_check_against_key_reports_differences() -> None:
    key = {"figures": {"votes": 3, "workshops": 1}, "outcomes": {"votes": {"accepted": 3, "duplicate": 0},
                                                                  "workshops": {"accepted": 2}}}
    assert bench.check_against_key({"votes": 3, "workshops": 1}, {"votes": {"accepted": 3},
                                                                  "workshops": {"accepted": 2}}, key) == []
    problems = bench.check_against_key({"votes": 4, "workshops": 1}, {"votes": {"accepted": 3, "duplicate": 1},
                                                                      "workshops": {"accepted": 2}}, key)
    assert problems == ["votes: 4 (expected 3)", "votes duplicate: 1 (expected None)"]


def test_harness_measures_steps_of_a_real_process(tmp_path: Path) -> None:
    """A child printing gvw-style progress lines: steps are timed, mapped to stages, and the
    CPU the child burns inside a step is attributed to that step's stage."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent("""
        import time
        def burn(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
        started = time.monotonic()
        def line(text):
            print(f"[{time.monotonic() - started:7.1f}s] {text}", flush=True)
        line("start  ingest_landing_zone")
        burn(0.6)
        line("done   ingest_landing_zone (0.6s)")
        line("start  dbt_warehouse_assets")
        time.sleep(0.4)
        line("done   dbt_warehouse_assets (0.4s)")
        blob = bytearray(200 * 1024 * 1024)  # 200 MB resident after the steps
        for i in range(0, len(blob), 4096):
            blob[i] = 1
    """))
    stage_of = bench.stage_mapper({"ingest_landing_zone": ["ingest"], "dbt_warehouse_assets": ["warehouse"]})
    run = bench.run_measured("child", [sys.executable, str(script)], bench.child_env(), tmp_path / "child.log",
                             timeout=60, stage_of_step=stage_of, interval=0.05)
    assert run.ok
    stages = bench.stage_summary(run)
    assert stages["ingest"]["cpu_s"] >= 0.4
    assert stages["dbt"]["cpu_s"] < 0.3
    assert stages["dbt"]["wall_s"] >= 0.35
    assert run.cpu_s >= 0.6
    assert run.maxrss_mb >= 200  # ru_maxrss of the child, from wait4
    assert stages["pipeline_work"]["wall_s"] >= stages["ingest"]["wall_s"] + stages["dbt"]["wall_s"] - 0.01


def test_stage_mapper_falls_back_to_step_names() -> None:
    stage_of = bench.stage_mapper({})
    assert stage_of("ingest_landing_zone") == "ingest"
    assert stage_of("dbt_warehouse_assets") == "dbt"
    assert stage_of("export_datasets") == "export"
    assert stage_of("audit_report") == "quality"
    assert stage_of("gx_checks_votes") == "quality"
    mapped = bench.stage_mapper({"publish": ["exports"], "validate_marts": ["quality"]})
    assert mapped("publish") == "export" and mapped("validate_marts") == "quality"


def test_harness_stops_the_whole_tree_at_the_deadline(tmp_path: Path) -> None:
    """A run past its deadline is stopped with every descendant, even one in a session of
    its own (out of reach of the child's process group), and reported as timed out."""
    script = tmp_path / "child.py"
    pid_file = tmp_path / "grandchild.pid"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(child.pid))
        print("started", flush=True)
        time.sleep(120)
    """))
    run = bench.run_measured("sleepy", [sys.executable, str(script)], bench.child_env(), tmp_path / "sleepy.log",
                             timeout=3, interval=0.1)
    assert run.timed_out and not run.ok
    assert run.wall_s < 60
    grandchild = int(pid_file.read_text())
    assert not Path(f"/proc/{grandchild}").exists() or "Z" in Path(f"/proc/{grandchild}/stat").read_text().split()[2]
