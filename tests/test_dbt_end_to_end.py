"""End to end: the reference generator (scale 1) -> ingestion -> `dbt build` -> the marts
reproduce the answer key (expected.json, written by the generator from its plan) and the
published figures (orchestration/reference/reference_figures.json)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from orchestration.generate import generate_landing_zone
from orchestration.ingest import ingest_landing_zone
from orchestration.settings import PROJECT_ROOT
from raw_fixtures import run_dbt

pytestmark = pytest.mark.slow

REFERENCE_FIGURES = PROJECT_ROOT / "orchestration" / "reference" / "reference_figures.json"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("end_to_end")
    data_dir = root / "data"
    key = generate_landing_zone(data_dir, scale=1.0, seed=2017)
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        ingest_landing_zone(conn, data_dir / "landing", salt="end-to-end-test-salt")
    finally:
        conn.close()
    result = run_dbt(["build"], data_dir, root)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    yield {"conn": conn, "expected": key, "expected_file": json.loads((data_dir / "expected.json").read_text())}
    conn.close()


def _nested(rows: list[tuple]) -> dict:
    out: dict = {}
    for outer, inner, value in rows:
        out.setdefault(outer, {})[inner] = value
    return out


def test_answer_key_file_matches_returned_key(warehouse: dict) -> None:
    assert warehouse["expected_file"]["figures"] == warehouse["expected"]["figures"]


def test_headline_figures(warehouse: dict) -> None:
    cur = warehouse["conn"].execute("select * from marts.rpt_headline_figures")
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    figures = dict(zip(names, rows[0], strict=True))
    assert figures == warehouse["expected"]["figures"]
    published = json.loads(REFERENCE_FIGURES.read_text(encoding="utf-8"))
    assert figures == {name: published[name] for name in figures}


def test_top_options_by_votes(warehouse: dict) -> None:
    top = dict(warehouse["conn"].execute(
        "select question_code, option_code from marts.fct_theme_rankings where scope_type = 'global' and vote_rank = 1"
    ).fetchall())
    assert top == warehouse["expected"]["top_option_by_votes"]
    published = json.loads(REFERENCE_FIGURES.read_text(encoding="utf-8"))["top_option_by_votes"]
    assert {q: top[q] for q in published} == published
    by_region = _nested(warehouse["conn"].execute(
        "select scope_value, question_code, option_code from marts.fct_theme_rankings"
        " where scope_type = 'region' and vote_rank = 1"
    ).fetchall())
    assert by_region == warehouse["expected"]["top_option_by_votes_by_region"]


def test_global_votes_and_borda_points(warehouse: dict) -> None:
    conn, key = warehouse["conn"], warehouse["expected"]
    votes = _nested(conn.execute(
        "select question_code, option_code, votes from marts.fct_theme_rankings where scope_type = 'global'"
    ).fetchall())
    assert votes == key["votes_by_option"]
    points = _nested(conn.execute(
        "select question_code, option_code, workshop_points from marts.fct_theme_rankings where scope_type = 'global'"
    ).fetchall())
    assert points == key["workshop_borda_points"]
    top_workshops = dict(conn.execute(
        "select question_code, option_code from marts.fct_theme_rankings where scope_type = 'global' and workshop_rank = 1"
    ).fetchall())
    assert top_workshops == key["top_option_by_workshops"]
    # vote_share's denominator: the votes that answered the question
    answering = dict(conn.execute("""
        select question_code, round(max(votes / vote_share))
        from marts.fct_theme_rankings where scope_type = 'global' and votes > 0 group by question_code
    """).fetchall())
    assert answering == {q: float(n) for q, n in key["votes_answering"].items()}


def test_quarantine_summary(warehouse: dict) -> None:
    got = {(s, r): n for s, r, n in warehouse["conn"].execute(
        "select source, reason, records from marts.rpt_quarantine_summary").fetchall()}
    expected = {(source, outcome): n for source, counts in warehouse["expected"]["outcomes"].items()
                for outcome, n in counts.items() if outcome != "accepted"}
    assert got == expected


def test_workshops(warehouse: dict) -> None:
    conn, key = warehouse["conn"], warehouse["expected"]
    by_kind = dict(conn.execute("select workshop_kind_code, count(*) from marts.fct_workshops group by 1").fetchall())
    assert {k: by_kind.get(k, 0) for k in key["workshops_by_kind"]} == key["workshops_by_kind"]
    mismatched = [r[0] for r in conn.execute(
        "select workshop_id from marts.fct_workshops where participants_mismatch order by workshop_id").fetchall()]
    assert mismatched == sorted(key["participant_count_mismatches"])
    counted = {r[0] for r in conn.execute("select workshop_id from marts.fct_workshops").fetchall()}
    assert not counted & set(key["incomplete_workshops"])
    by_region = dict(conn.execute("select region_code, count(*) from marts.fct_votes group by 1").fetchall())
    assert {r: by_region.get(r, 0) for r in key["votes_by_region"]} == key["votes_by_region"]
