"""Real `dbt build` on the hand-made raw tables of raw_fixtures.py, and the marts it writes.

Every expected value below was worked out by hand from the fixture (see raw_fixtures.py),
not from the models. The accepted votes are:

    R1  en FR(europe)        public   12y (10_19)  35_44    Q1: Q1-02;Q1-01  Q2: Q2-04
    R2  fr FR(europe)        academic  3y (0_4)    under_25 Q1: Q1-02
    R3  zh CN(asia_oceania)  national 30y (30_plus) 55_64   Q1: Q1-01;Q1-03  Q2: Q2-04;Q2-01
    R4  es BR(latin_am.)     public   20y (20_29)  45_54    Q5: Q5-02 (its superseded version chose Q1-05)
    R5  en HK(asia_oceania)  school    0y (0_4)    25_34    Q1: Q1-03;Q1-02  Q5: Q5-02;Q5-01

Counting workshops (W3 never closes):

    W1 regional KE(africa) en: check-ins p1 KE public 10y 35_44, p2 NG academic 5y 25_34,
       p3 KE public 7y 45_54 (3 reported); Q1 ranks 1 Q1-04, 2 Q1-02, 3 Q1-01
    W2 national CN(asia_oceania) zh: check-ins q1 CN national 15y 45_54, q2 TW other 25y
       55_64 (5 reported); Q1 ranks 1 Q1-02, 2 Q1-04
"""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import pytest

from raw_fixtures import build_fixture_warehouse, run_dbt

RESPONSE_IDS = ["R1", "R2", "R3", "R4", "R5"]
EMAILS = ["ann@example.org", "li@example.cn", "ana@example.br", "kai@example.hk"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One `dbt build` of the tiny fixture; tests only read the resulting warehouse."""
    root = tmp_path_factory.mktemp("dbt_build")
    data_dir = root / "data"
    data_dir.mkdir()
    build_fixture_warehouse(data_dir / "warehouse.duckdb")
    result = run_dbt(["build"], data_dir, root)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    return {"root": root, "data_dir": data_dir, "stdout": result.stdout}


@pytest.fixture()
def conn(built: dict):
    c = duckdb.connect(str(built["data_dir"] / "warehouse.duckdb"), read_only=True)
    yield c
    c.close()


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return conn.execute(sql, params or []).fetchall()


def test_build_is_clean(built: dict) -> None:
    out = built["stdout"]
    # --warn-error would have failed the build on any warning; the summary says so too.
    assert "WARN=0" in out and "ERROR=0" in out and "SKIP=0" in out
    run_results = json.loads((built["root"] / "target" / "run_results.json").read_text())
    kinds = {r["unique_id"].split(".")[0] for r in run_results["results"]}
    assert {"seed", "model", "test", "unit_test"} <= kinds
    assert all(r["status"] in ("success", "pass") for r in run_results["results"])


def test_layers_are_views_and_marts_are_tables(conn) -> None:
    types = dict(
        ((schema, name), kind)
        for schema, name, kind in _rows(conn, "select table_schema, table_name, table_type from information_schema.tables")
    )
    assert types[("staging", "stg_raw__votes")] == "VIEW"
    assert types[("intermediate", "int_vote_choices")] == "VIEW"
    # the per-cell counts the theme rankings roll up are tables (small, tested, read once)
    assert types[("intermediate", "int_vote_choice_cells")] == "BASE TABLE"
    assert types[("intermediate", "int_vote_answer_cells")] == "BASE TABLE"
    marts = {name for (schema, name), kind in types.items() if schema == "marts" and kind == "BASE TABLE"}
    assert marts == {
        "dim_country", "dim_region", "dim_question", "dim_option", "dim_library_type", "dim_age_group",
        "dim_language", "dim_experience_band", "fct_votes", "fct_vote_choices", "fct_workshops",
        "fct_workshop_answers", "fct_participation", "fct_theme_rankings", "rpt_headline_figures",
        "rpt_quarantine_summary",
    }


def test_headline_figures(conn) -> None:
    cur = conn.execute("select * from marts.rpt_headline_figures")
    names = [d[0] for d in cur.description]
    rows = cur.fetchall()
    assert len(rows) == 1
    assert dict(zip(names, rows[0], strict=True)) == {
        "votes": 5,
        "workshops": 2,  # W3 never closed
        "workshop_participants": 5,  # W1 p1 p2 p3 (p1's second check-in is a duplicate), W2 q1 q2
        "participants": 10,
        "library_experience_years": 127,  # votes 12+3+30+20+0, check-ins 10+5+7+15+25
        "un_member_states": 5,  # FR CN BR KE NG
        "countries_and_areas": 7,  # + HK TW; not JP (W3's country) nor US (W3's participant)
        "age_groups_represented": 5,  # no 65_plus (only W3's participant)
        "library_types_represented": 5,  # no special (only W3's participant)
        "regions_represented": 4,  # europe asia_oceania latin_america_caribbean africa
    }


def test_quarantine_summary_lists_every_code(conn) -> None:
    got = {(s, r): n for s, r, n in _rows(conn, "select source, reason, records from marts.rpt_quarantine_summary")}
    vote_codes = ["malformed_row", "missing_required", "test_submission", "invalid_timestamp",
                  "outside_voting_window", "unknown_code", "invalid_experience", "invalid_choice",
                  "missing_column", "duplicate", "superseded"]
    workshop_codes = ["malformed_json", "missing_required", "unknown_event_type", "invalid_timestamp",
                      "unknown_code", "invalid_experience", "invalid_choice", "invalid_date",
                      "duplicate", "superseded", "incomplete_workshop"]
    expected = {("votes", c): 0 for c in vote_codes} | {("workshops", c): 0 for c in workshop_codes}
    expected |= {
        ("votes", "test_submission"): 1, ("votes", "invalid_choice"): 1, ("votes", "malformed_row"): 1,
        ("votes", "missing_column"): 2, ("votes", "duplicate"): 1, ("votes", "superseded"): 1,
        ("workshops", "malformed_json"): 1, ("workshops", "unknown_event_type"): 1,
        ("workshops", "invalid_date"): 1, ("workshops", "duplicate"): 2, ("workshops", "superseded"): 1,
        ("workshops", "incomplete_workshop"): 2,
    }
    assert got == expected


def _ranking(conn, scope_type: str, scope_value: str, question: str) -> dict[str, tuple]:
    rows = _rows(
        conn,
        """
        select option_code, votes, vote_share, vote_rank, workshop_points, workshop_rank
        from marts.fct_theme_rankings
        where scope_type = ? and scope_value = ? and question_code = ?
        """,
        [scope_type, scope_value, question],
    )
    return {r[0]: r[1:] for r in rows}


def test_global_ranking_of_q1(conn) -> None:
    ranking = _ranking(conn, "global", "all", "Q1")
    assert len(ranking) == 10
    # Q1 answered by R1 R2 R3 R5 (R4 left it blank): Q1-02 3/4, Q1-01 2/4, Q1-03 2/4
    # (tie broken by code). Borda: W1 Q1-04 5, Q1-02 4, Q1-01 3; W2 Q1-02 5, Q1-04 4
    # -> Q1-02 9 and Q1-04 9 tie (by code), Q1-01 3.
    assert ranking["Q1-02"] == (3, 0.75, 1, 9, 1)
    assert ranking["Q1-01"] == (2, 0.5, 2, 3, 3)
    assert ranking["Q1-03"] == (2, 0.5, 3, 0, 4)
    assert ranking["Q1-04"] == (0, 0.0, 4, 9, 2)
    # The superseded version of R4 chose Q1-05: it must not count.
    assert ranking["Q1-05"] == (0, 0.0, 5, 0, 5)
    assert [ranking[f"Q1-{n:02d}"][2] for n in range(6, 11)] == [6, 7, 8, 9, 10]


def test_global_top_options(conn) -> None:
    top = dict(_rows(conn, """
        select question_code, option_code from marts.fct_theme_rankings
        where scope_type = 'global' and vote_rank = 1
    """))
    assert top["Q1"] == "Q1-02"
    assert top["Q2"] == "Q2-04"  # R1 and R3: 2 of 2
    assert top["Q5"] == "Q5-02"  # R4 and R5
    # Nobody answered Q3: every share is 0 and the ranking falls back to option code.
    assert top["Q3"] == "Q3-01"
    assert _ranking(conn, "global", "all", "Q3")["Q3-01"] == (0, 0.0, 1, 0, 1)


def test_scoped_rankings(conn) -> None:
    europe = _ranking(conn, "region", "europe", "Q1")  # R1, R2; no European workshop
    assert europe["Q1-02"] == (2, 1.0, 1, 0, 2)
    assert europe["Q1-01"] == (1, 0.5, 2, 0, 1)
    asia = _ranking(conn, "region", "asia_oceania", "Q1")  # R3, R5; W2
    assert asia["Q1-03"] == (2, 1.0, 1, 0, 4)
    assert asia["Q1-01"] == (1, 0.5, 2, 0, 3)
    assert asia["Q1-02"] == (1, 0.5, 3, 5, 1)
    assert asia["Q1-04"] == (0, 0.0, 4, 4, 2)
    africa = _ranking(conn, "region", "africa", "Q1")  # no vote; W1
    assert africa["Q1-04"] == (0, 0.0, 4, 5, 1)
    assert africa["Q1-02"] == (0, 0.0, 2, 4, 2)
    english = _ranking(conn, "language", "en", "Q1")  # R1, R5; W1
    assert english["Q1-02"] == (2, 1.0, 1, 4, 2)
    assert english["Q1-04"] == (0, 0.0, 4, 5, 1)
    band = _ranking(conn, "experience_band", "0_4", "Q1")  # R2, R5; workshops have no band
    assert band["Q1-02"] == (2, 1.0, 1, None, None)
    assert band["Q1-03"] == (1, 0.5, 2, None, None)
    public_q5 = _ranking(conn, "library_type", "public", "Q5")  # R1 (no Q5), R4
    assert public_q5["Q5-02"] == (1, 1.0, 1, None, None)
    elderly = _ranking(conn, "age_group", "65_plus", "Q1")  # nobody
    assert {v[:2] for v in elderly.values()} == {(0, 0.0)}
    assert {v[3:] for v in elderly.values()} == {(None, None)}


def test_every_option_in_every_scope_value(conn) -> None:
    per_type = dict(_rows(conn, """
        select scope_type, count(distinct scope_value)
        from marts.fct_theme_rankings group by scope_type
    """))
    assert per_type == {"global": 1, "region": 6, "library_type": 6, "age_group": 6,
                        "experience_band": 5, "language": 7}
    incomplete = _rows(conn, """
        select scope_type, scope_value from marts.fct_theme_rankings
        group by scope_type, scope_value having count(distinct option_code) <> 60
    """)
    assert incomplete == []
    # Workshop columns are null exactly where workshops lack the attribute.
    nulls = dict(_rows(conn, """
        select scope_type, bool_and(workshop_points is null and workshop_rank is null)
        from marts.fct_theme_rankings group by scope_type
    """))
    assert nulls == {"global": False, "region": False, "language": False,
                     "library_type": True, "age_group": True, "experience_band": True}


def test_fct_votes(conn) -> None:
    rows = _rows(conn, """
        select vote_key, respondent_key is null, submitted_on, country_code, region_code,
               experience_band_code, questions_answered, options_chosen
        from marts.fct_votes
    """)
    md5 = {hashlib.md5(r.encode()).hexdigest(): r for r in RESPONSE_IDS}
    by_id = {md5[r[0]]: r[1:] for r in rows}
    assert set(by_id) == set(RESPONSE_IDS)
    assert by_id["R2"][0] is True and by_id["R1"][0] is False  # R2 gave no e-mail
    assert str(by_id["R4"][1]) == "2017-09-30"  # 23:59:59 UTC stays on the 30th
    assert {r: v[4] for r, v in by_id.items()} == {
        "R1": "10_19", "R2": "0_4", "R3": "30_plus", "R4": "20_29", "R5": "0_4"}
    assert by_id["R5"][2:4] == ("HK", "asia_oceania")
    assert {r: v[5:] for r, v in by_id.items()} == {
        "R1": (2, 3), "R2": (1, 1), "R3": (2, 4), "R4": (1, 1), "R5": (2, 4)}
    positions = _rows(conn, """
        select c.option_code, c.choice_position from marts.fct_vote_choices c
        where c.vote_key = ? and c.question_code = 'Q1' order by c.choice_position
    """, [hashlib.md5(b"R1").hexdigest()])
    assert positions == [("Q1-02", 1), ("Q1-01", 2)]


def test_workshops_and_answers(conn) -> None:
    workshops = _rows(conn, """
        select workshop_id, workshop_kind_code, cast(held_on as varchar), country_code, region_code,
               language_code, participants, reported_participants, participants_mismatch
        from marts.fct_workshops order by workshop_id
    """)
    assert workshops == [
        ("W1", "regional", "2017-05-10", "KE", "africa", "en", 3, 3, False),
        ("W2", "national", "2017-06-01", "CN", "asia_oceania", "zh", 2, 5, True),
    ]
    answers = _rows(conn, """
        select workshop_id, question_code, answer_rank, option_code, borda_points
        from marts.fct_workshop_answers order by workshop_id, question_code, answer_rank
    """)
    assert answers == [
        ("W1", "Q1", 1, "Q1-04", 5), ("W1", "Q1", 2, "Q1-02", 4), ("W1", "Q1", 3, "Q1-01", 3),
        ("W2", "Q1", 1, "Q1-02", 5), ("W2", "Q1", 2, "Q1-04", 4),
    ]


def test_participation(conn) -> None:
    rows = _rows(conn, """
        select channel, count(*), sum(years_experience), count(distinct country_code),
               count(vote_key), count(workshop_id)
        from marts.fct_participation group by channel order by channel
    """)
    assert rows == [("vote", 5, 65, 4, 5, 0), ("workshop", 5, 62, 4, 0, 5)]
    workshop_days = _rows(conn, """
        select workshop_id, cast(participated_on as varchar), count(*) from marts.fct_participation
        where channel = 'workshop' group by all order by 1
    """)
    assert workshop_days == [("W1", "2017-05-10", 3), ("W2", "2017-06-01", 2)]


def test_marts_hold_no_response_id_or_email(conn) -> None:
    columns = _rows(conn, """
        select table_name, column_name from information_schema.columns
        where table_schema = 'marts' and data_type = 'VARCHAR'
    """)
    names = {c for _, c in columns}
    assert not names & {"response_id", "respondent_email", "email", "participant_ref"}
    forbidden = RESPONSE_IDS + EMAILS
    placeholders = ", ".join("?" * len(forbidden))
    leaks = []
    for table, column in columns:  # one set-based query per column of the schema
        n = conn.execute(
            f"select count(*) from marts.{table} where lower({column}) in ({placeholders})",
            [f.lower() for f in forbidden],
        ).fetchone()[0]
        if n:
            leaks.append((table, column, n))
    assert leaks == []


def test_docs_generate_works(built: dict) -> None:
    # Same artifacts directory as the build: dbt re-uses its partial parse.
    root = built["root"]
    result = run_dbt(["docs", "generate"], built["data_dir"], root)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    catalog = json.loads((root / "target" / "catalog.json").read_text())
    node = catalog["nodes"]["model.global_vision_warehouse.fct_theme_rankings"]
    assert {"scope_type", "vote_share", "workshop_rank"} <= set(node["columns"])
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    marts = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == "marts"]
    # Every mart column is described.
    undocumented = [(n["name"], c) for n in marts for c, spec in n["columns"].items() if not spec["description"]]
    assert marts and undocumented == []
    assert (root / "target" / "index.html").exists()


def test_duckdb_settings_come_from_the_environment(built: dict, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # dbt's DuckDB gets the pipeline's memory limit (GVW_DUCKDB_MEMORY_LIMIT) and spill
    # directory (GVW_DUCKDB_TEMP_DIR, by default <data dir>/tmp/duckdb/dbt, where the Dagster asset
    # points it), and unordered inserts.
    monkeypatch.setenv("GVW_DUCKDB_MEMORY_LIMIT", "300MB")
    monkeypatch.delenv("GVW_DUCKDB_TEMP_DIR", raising=False)
    query = ("select current_setting('memory_limit') as memory_limit, current_setting('temp_directory') as temp_dir,"
             " current_setting('preserve_insertion_order') as ordered")
    result = run_dbt(["show", "--inline", query, "--output", "json", "--quiet"], built["data_dir"], tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    (row,) = json.loads(result.stdout)["show"]
    # 300 MB = 286.1 MiB
    assert row == {"memory_limit": "286.1 MiB", "temp_dir": str(built["data_dir"] / "tmp" / "duckdb" / "dbt"), "ordered": False}


def test_key_and_value_tests_fail_on_bad_rows(built: dict, tmp_path) -> None:
    # The unique, composite-key and accepted-values tests run DuckDB-specific queries
    # (hashes first, values joined): they must still report exactly what dbt's plain
    # versions would.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(built["data_dir"] / "warehouse.duckdb", data_dir / "warehouse.duckdb")
    r1 = hashlib.md5(b"R1").hexdigest()  # R1 chose Q1-02 (position 1), Q1-01 (2), Q2-04 (1)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as c:
        c.execute(
            "insert into marts.fct_vote_choices values (?, 'Q1', 'Q1-02', 1), (?, 'Q1', 'Q1-03', 2), (?, 'Q1', 'Q9-99', 7)",
            [r1, r1, r1],
        )
        c.execute("insert into marts.fct_votes select * from marts.fct_votes where vote_key = ?", [hashlib.md5(b"R2").hexdigest()])
    result = run_dbt(["test", "--select", "fct_vote_choices", "fct_votes"], data_dir, tmp_path)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    run_results = json.loads((tmp_path / "target" / "run_results.json").read_text())
    failed = {r["unique_id"].split(".")[2]: r["failures"] for r in run_results["results"] if r["status"] == "fail"}
    assert failed == {
        # R1/Q1/Q1-02 twice
        "unique_combination_of_columns_fct_vote_choices_vote_key__question_code__option_code": 1,
        # R1/Q1 positions 1 and 2 twice each
        "unique_combination_of_columns_fct_vote_choices_vote_key__question_code__choice_position": 2,
        # Q9-99: not an option
        "accepted_values_fct_vote_choices_option_code__" + "__".join(
            f"Q{q}_{o:02d}" for q in range(1, 7) for o in range(1, 11)): 1,
        "relationships_fct_vote_choices_option_code__option_code__ref_dim_option_": 1,
        "relationships_composite_fct_vote_choices_question_code__option_code__ref_dim_option___question_code__option_code": 1,
        # three choices more than fct_votes counts
        "assert_vote_choice_counts_agree": 1,
        # R2 twice
        "unique_fct_votes_vote_key": 1,
        "assert_participants_are_votes_plus_workshop_participants": 1,
    }
