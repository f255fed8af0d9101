"""End to end: generator -> ingestion -> dbt build -> quality -> export, through `gvw run`
(the refresh_all job), then the published exports are checked against the warehouse.

Slow: a scale-0.05 landing zone for the behaviour, and the scale-1 reference landing zone
for the headline figures (orchestration/reference/reference_figures.json)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from test_export import BI_PROBE, assert_manifest_consistent, dataset_rows, read_every_way

from orchestration.export import DATASETS, read_manifest
from orchestration.export.contract import snapshot_problems
from orchestration.export.datasets import FORBIDDEN_COLUMN_PATTERN
from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

GVW = Path(sys.executable).with_name("gvw")
SNAPSHOT_DIR = PROJECT_ROOT / "tests" / "schema_snapshots"
REFERENCE = PROJECT_ROOT / "orchestration" / "reference" / "reference_figures.json"


def gvw_env(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "GVW_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(data_dir / ".dagster"),
           "GVW_PII_SALT": "e2e-salt"}
    env.pop("GVW_TEST_CRASH_AT", None)
    return env


def run_pipeline(data_dir: Path, scale: float) -> str:
    """Generate the landing zone and run the whole pipeline; returns the Dagster run id."""
    env = gvw_env(data_dir)
    for command in (["generate", "--scale", str(scale), "--seed", "2017"], ["run"]):
        done = subprocess.run([str(GVW), *command], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=1800)
        assert done.returncode == 0, f"gvw {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    match = re.search(r"run ([0-9a-f-]{36}) succeeded", done.stdout)
    assert match, done.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict:
    data_dir = tmp_path_factory.mktemp("e2e_small")
    run_id = run_pipeline(data_dir, 0.05)
    return {"data_dir": data_dir, "exports": data_dir / "exports", "warehouse": data_dir / "warehouse.duckdb",
            "run_id": run_id}


def _warehouse(env: dict) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(env["warehouse"]), read_only=True)


def test_the_pipeline_publishes_every_mart(small: dict) -> None:
    exports = small["exports"]
    manifest = assert_manifest_consistent(exports)
    assert manifest["run_id"] == small["run_id"], "the exports must come from the pipeline run (refresh_all)"
    assert list(manifest["datasets"]) == [spec.name for spec in DATASETS]
    conn = _warehouse(small)
    try:
        for spec in DATASETS:
            (schema,) = conn.execute(
                "select table_schema from information_schema.tables where table_name = ?", [spec.model]
            ).fetchone()
            rows = conn.execute(f'select count(*) from "{schema}"."{spec.model}"').fetchone()[0]
            assert manifest["datasets"][spec.name]["rows"] == rows == dataset_rows(exports, spec.name), spec.name
        ledger = conn.execute(
            "select source, count(*), sum(records_read) from raw.load_ledger group by source"
        ).fetchall()
    finally:
        conn.close()
    assert {s: (d["files"], d["records_read"]) for s, d in manifest["load_ledger"].items()} == {
        s: (f, r) for s, f, r in ledger
    }
    dictionary = (exports / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    assert "_(undocumented)_" not in dictionary
    for entry in manifest["datasets"].values():
        assert entry["description"], entry["model"]


def test_the_published_files_match_the_schema_snapshots(small: dict) -> None:
    manifest = read_manifest(small["exports"] / "manifest.json")
    current = {name: d["columns"] for name, d in manifest["datasets"].items()}
    problems = snapshot_problems(current, SNAPSHOT_DIR)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dataset", [spec.name for spec in DATASETS])
def test_every_reader_gets_the_same_rows_on_real_data(small: dict, dataset: str) -> None:
    entry = read_manifest(small["exports"] / "manifest.json")["datasets"][dataset]
    tables = read_every_way(small["exports"], dataset, entry)
    for reader, table in tables.items():
        assert [(f.name, str(f.type)) for f in table.schema] == [(c["name"], c["arrow_type"]) for c in entry["columns"]]
        assert table.num_rows == entry["rows"]
        assert table.equals(tables["duckdb"]), reader


def test_small_cells_are_suppressed_on_real_data(small: dict) -> None:
    manifest = read_manifest(small["exports"] / "manifest.json")
    min_cell = manifest["format"]["min_cell"]
    conn = _warehouse(small)
    try:
        (schema,) = conn.execute(
            "select table_schema from information_schema.tables where table_name = 'fct_theme_rankings'"
        ).fetchone()
        leaks, wrong_flags, global_rows, suppressed = conn.execute(
            f"""
            select
                count(*) filter (where e.suppressed and (e.votes is not null or e.vote_share is not null or e.vote_rank is not null)),
                count(*) filter (where e.suppressed <> (w.scope_type <> 'global' and w.votes < $min_cell)),
                count(*) filter (where w.scope_type = 'global' and e.votes = w.votes and not e.suppressed),
                count(*) filter (where e.suppressed)
            from read_parquet($glob, hive_partitioning = false) e
            join "{schema}".fct_theme_rankings w using (scope_type, scope_value, question_code, option_code)
            """,
            {"glob": f"{small['exports']}/theme_rankings/**/*.parquet", "min_cell": min_cell},
        ).fetchone()
        total_global = conn.execute(
            f"select count(*) from \"{schema}\".fct_theme_rankings where scope_type = 'global'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert leaks == 0 and wrong_flags == 0
    assert global_rows == total_global > 0
    assert suppressed == manifest["datasets"]["theme_rankings"]["suppression"]["rows_suppressed"] > 0


def test_no_identifier_reaches_the_exports(small: dict) -> None:
    exports = small["exports"]
    manifest = read_manifest(exports / "manifest.json")
    names = [c["name"] for d in manifest["datasets"].values() for c in d["columns"]]
    assert not [n for n in names if re.search(FORBIDDEN_COLUMN_PATTERN, n, re.IGNORECASE)]
    conn = _warehouse(small)
    try:
        # the pseudonymous keys are not the platform's response ids
        for dataset, column in (("votes", "vote_key"), ("participation", "participant_key"), ("vote_choices", "vote_key")):
            clear = conn.execute(
                f"""
                select count(*) from read_parquet(?, hive_partitioning = false) e
                join (select distinct response_id from raw.votes) r on e.{column} = r.response_id
                """,
                [f"{exports}/{dataset}/**/*.parquet"],
            ).fetchone()[0]
            assert clear == 0, f"{dataset}.{column} holds response ids"
    finally:
        conn.close()


def test_bi_duckdb_serves_the_current_version(small: dict, tmp_path: Path) -> None:
    probe = subprocess.run([sys.executable, "-c", BI_PROBE, str(small["exports"] / "bi.duckdb")], cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    counts = json.loads(probe.stdout)["counts"]
    manifest = read_manifest(small["exports"] / "manifest.json")
    assert counts == {name: d["rows"] for name, d in sorted(manifest["datasets"].items())}


def test_a_rerun_without_new_files_keeps_the_published_version(small: dict) -> None:
    exports = small["exports"]

    def files() -> dict[str, tuple[int, int]]:
        return {p.relative_to(exports).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in exports.rglob("*") if p.is_file() and not p.is_symlink()}

    before, version = files(), read_manifest(exports / "manifest.json")["version_id"]
    done = subprocess.run([str(GVW), "run"], env=gvw_env(small["data_dir"]), cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_manifest(exports / "manifest.json")["version_id"] == version
    assert files() == before


def test_headline_figures_of_the_reference_data_match_the_published_figures(tmp_path_factory) -> None:
    data_dir = tmp_path_factory.mktemp("e2e_scale1")
    run_pipeline(data_dir, 1.0)
    exports = data_dir / "exports"
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    conn = duckdb.connect()
    try:
        cursor = conn.execute("select * from read_parquet(?)", [f"{exports}/headline_figures/*.parquet"])
        columns = [d[0] for d in cursor.description]
        (row,) = cursor.fetchall()
        top = dict(conn.execute(
            """
            select question_code, option_code from read_parquet(?)
            where scope_type = 'global' and vote_rank = 1
            """,
            [f"{exports}/theme_rankings/*.parquet"],
        ).fetchall())
    finally:
        conn.close()
    figures = dict(zip(columns, row, strict=True))
    expected = {k: v for k, v in reference.items() if isinstance(v, int)}
    assert figures == expected
    assert {q: top[q] for q in reference["top_option_by_votes"]} == reference["top_option_by_votes"]
