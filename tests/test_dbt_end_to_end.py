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


def test_vote_counts_match_the_choices(warehouse: dict) -> None:
    # fct_votes counts each vote's options and questions from its answers, not from
    # fct_vote_choices: both must agree for every vote.
    mismatches = warehouse["conn"].execute("""
        select count(*)
        from marts.fct_votes v
        full join (
            select vote_key, count(*) as options, count(distinct question_code) as questions
            from marts.fct_vote_choices group by vote_key
        ) c using (vote_key)
        where v.vote_key is null
            or coalesce(c.options, 0) <> v.options_chosen
            or coalesce(c.questions, 0) <> v.questions_answered
    """).fetchone()[0]
    assert mismatches == 0
    assert warehouse["conn"].execute("select count(*) from marts.fct_votes where options_chosen > 0").fetchone()[0] > 0


def test_vote_rankings_match_a_direct_count(warehouse: dict) -> None:
    # The rankings roll per-cell counts up to every scope; counting the choices of each
    # scope's votes directly must give the same votes and shares for every scope value.
    got = warehouse["conn"].execute("""
        with scopes as (
            select vote_key, 'global' as scope_type, 'all' as scope_value from marts.fct_votes
            union all select vote_key, 'region', region_code from marts.fct_votes
            union all select vote_key, 'library_type', library_type_code from marts.fct_votes
            union all select vote_key, 'age_group', age_group_code from marts.fct_votes
            union all select vote_key, 'experience_band', experience_band_code from marts.fct_votes
            union all select vote_key, 'language', language_code from marts.fct_votes
        ),
        votes as (
            select s.scope_type, s.scope_value, c.option_code, count(*) as votes
            from marts.fct_vote_choices c join scopes s using (vote_key) group by all
        ),
        answering as (
            select s.scope_type, s.scope_value, c.question_code, count(distinct c.vote_key) as answering
            from marts.fct_vote_choices c join scopes s using (vote_key) group by all
        ),
        expected as (
            select r.scope_type, r.scope_value, r.option_code, coalesce(v.votes, 0) as votes,
                case when coalesce(a.answering, 0) = 0 then 0.0 else coalesce(v.votes, 0) / a.answering end as share
            from marts.fct_theme_rankings r
            left join votes v using (scope_type, scope_value, option_code)
            left join answering a using (scope_type, scope_value, question_code)
        )
        select count(*) filter (where e.votes <> r.votes or e.share <> r.vote_share), count(*), sum(r.votes)
        from marts.fct_theme_rankings r join expected e using (scope_type, scope_value, option_code)
    """).fetchone()
    mismatches, rows, total_votes = got
    assert mismatches == 0
    assert rows == 31 * 60 and total_votes > 0
