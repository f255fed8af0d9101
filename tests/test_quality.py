"""Data-quality suites, Data Docs and the audit report on a real warehouse: the hand-made raw
layer of tests/raw_fixtures.py, built into marts by the project's real dbt (no Dagster here;
see test_quality_dagster.py)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from raw_fixtures import V2, build_fixture_warehouse, run_dbt

from orchestration.quality import frames as frames_module
from orchestration.quality.audit import REPORT_HTML, REPORT_JSON, write_audit_report
from orchestration.quality.frames import FCT_VOTE_CHOICES_SQL, FRAMES, MART_TABLES, Catalog, build_frame, resolve_tables
from orchestration.quality.offline import make_page_offline
from orchestration.quality.runner import (
    build_data_docs,
    limit_memory,
    prune_results,
    read_only,
    validate_frame,
    validate_frames,
)
from orchestration.quality.scrub import EMAIL_RE, MASK, scrub
from orchestration.settings import EXPECTATIONS_DIR, size_bytes

# Independent of orchestration.quality.offline: any tag that would load something remote.
REMOTE_TAG = re.compile(r"""<(script|link|img)\b[^>]*\b(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)
PLANTED = "planted.person@example.org"


def build_once(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture raw layer and the marts dbt builds from it, built once per test session
    (test_quality_dagster.py uses it too). Tests copy it before changing anything."""
    data_dir = tmp_path_factory.getbasetemp() / "quality_built_warehouse"
    warehouse = data_dir / "warehouse.duckdb"
    if not (data_dir / "built").exists():
        data_dir.mkdir(exist_ok=True)
        build_fixture_warehouse(warehouse)
        result = run_dbt(["build"], data_dir, data_dir / "dbt_artifacts")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        (data_dir / "built").touch()
    return warehouse


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_once(tmp_path_factory)


@pytest.fixture()
def warehouse(built_warehouse: Path, data_dir: Path) -> Path:
    """A private copy of the built warehouse in this test's data directory."""
    path = data_dir / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    return path


def _validate(warehouse: Path, frame: str, run_name: str = "test-run"):
    return validate_frame(
        frame, connect=lambda: read_only(warehouse), quality_dir=warehouse.parent / "quality", run_name=run_name
    )


def _execute(warehouse: Path, *statements: str) -> None:
    conn = duckdb.connect(str(warehouse))
    try:
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_scrub_masks_addresses_in_nested_results() -> None:
    value = {"partial_unexpected_list": [PLANTED, 3, ("x", "a@b.co")], PLANTED: {"k": "no mail here"}}
    cleaned = scrub(value)
    assert PLANTED not in json.dumps(cleaned) and "a@b.co" not in json.dumps(cleaned)
    assert cleaned["partial_unexpected_list"][1] == 3 and MASK in cleaned["partial_unexpected_list"][0]
    assert scrub("<email:1a2b3c>") == "<email:1a2b3c>"  # ingestion's mask is no address


def test_every_suite_passes_on_the_built_warehouse_and_the_site_works_offline(warehouse: Path) -> None:
    before = _tree_digest(EXPECTATIONS_DIR)
    quality = warehouse.parent / "quality"
    outcomes = {
        o.frame: o
        for o in validate_frames(list(FRAMES), connect=lambda: read_only(warehouse), quality_dir=quality,
                                 run_name="test-run")
    }

    failed = {n: o.failing for n, o in outcomes.items() if not o.success}
    # The fixture's workshop W2 checked in 2 participants but reported 5: the warning suite.
    assert failed == {"workshop_participant_counts": ["expect_column_values_to_be_null(mismatched_workshop)"]}
    warning = outcomes["workshop_participant_counts"].expectations[0]
    assert warning.detail["partial_unexpected_list"] == ["W2: 2 checked in, 5 reported"]
    # Every mart is covered by the personal-data suite, and every frame has a Data Docs page.
    assert {o.table for o in outcomes.values() if o.suite == "mart_personal_data"} == set(MART_TABLES)
    for outcome in outcomes.values():
        assert outcome.evaluated > 0 and Path(outcome.docs_page).is_file()
        assert Path(outcome.docs_page).is_relative_to(quality / "data_docs")

    pages = list((quality / "data_docs").rglob("*.html"))
    assert len(pages) >= len(FRAMES) + 1
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not REMOTE_TAG.search(text), page
        assert "url(http" not in text.replace(" ", "").lower(), page
        assert "static/gvw/gvw_offline.js" in text, page
    for script in re.findall(r'<script src="([^"]+)"', (quality / "data_docs" / "index.html").read_text()):
        assert (quality / "data_docs" / script).is_file()
    # Results live in the data directory; the versioned context is left untouched.
    assert list((quality / "gx" / "validations").rglob("*.json"))
    assert _tree_digest(EXPECTATIONS_DIR) == before


def test_offline_rewrite_replaces_every_remote_resource() -> None:
    page = (
        '<html><head><link rel="stylesheet" href="https://cdn.example/b.css"/>'
        '<script src="//cdn.example/jq.js" integrity="x"></script>'
        '<script src="https://cdn.example/bt.js"></script><style>a{background:url(\'https://x/y.png\')}</style>'
        '</head><body><img class="l" src="https://s3.example/logo.png?x=1" alt="GX"/></body></html>'
    )
    out = make_page_offline(page, "../..")
    assert not REMOTE_TAG.search(out) and "https://" not in out and "//cdn" not in out
    assert out.count("<script") == 1 and '../../static/gvw/gvw_offline.js' in out
    assert 'src="../../static/images/logo-long.png"' in out


def test_corrupt_vote_share_and_rank_gap_fail_with_named_expectations(warehouse: Path) -> None:
    _execute(
        warehouse,
        "update marts.fct_theme_rankings set vote_share = 1.5 where scope_type = 'global' and option_code = 'Q1-01'",
        "update marts.fct_theme_rankings set vote_rank = 7 "
        "where scope_type = 'region' and scope_value = 'europe' and option_code = 'Q2-01'",
    )
    outcome = _validate(warehouse, "fct_theme_rankings")
    assert not outcome.success
    assert set(outcome.failing) == {
        "expect_column_values_to_be_between(vote_share)",
        "expect_column_values_to_be_null(vote_ranks_not_contiguous_in)",
    }
    details = {e.name: e.detail for e in outcome.expectations}
    assert details["expect_column_values_to_be_between(vote_share)"]["partial_unexpected_list"] == [1.5]
    assert details["expect_column_values_to_be_null(vote_ranks_not_contiguous_in)"]["partial_unexpected_list"][0] == (
        "region=europe Q2"
    )


def test_profile_frames_catch_duplicates_and_cross_layer_differences(warehouse: Path) -> None:
    _execute(
        warehouse,
        # a second copy of an accepted response, and a vote the mart does not have
        "insert into raw.votes select * from raw.votes where response_id = 'R2' and outcome = 'accepted'",
        "update raw.votes set years_experience = 71 where response_id = 'R3'",
    )
    raw = _validate(warehouse, "raw_votes_accepted")
    assert set(raw.failing) == {
        "expect_column_values_to_be_between(duplicate_response_ids)",
        "expect_column_values_to_be_between(years_experience)",
    }
    marts = _validate(warehouse, "fct_votes")
    assert marts.failing == ["expect_column_pair_values_to_be_equal(votes, accepted_raw_votes)"]
    ledger = _validate(warehouse, "raw_load_ledger")
    assert "expect_column_values_to_be_null(unreconciled_file)" in ledger.failing


def test_no_email_address_reaches_any_report(warehouse: Path) -> None:
    # An address planted in validated columns of the raw layer and of a mart, and in the
    # record text of a quarantined record (which ingestion would have masked).
    _execute(
        warehouse,
        f"update raw.votes set country = '{PLANTED}' where response_id = 'R2' and outcome = 'accepted'",
        f"update marts.dim_region set region_name_en = 'Contact {PLANTED}' where region_code = 'europe'",
        f"update raw.vote_quarantine set record_text = 'R7,{PLANTED},x', detail = 'mail {PLANTED}' "
        "where reason = 'malformed_row'",
    )
    votes = _validate(warehouse, "raw_votes_accepted")
    assert "expect_column_values_to_be_in_set(country)" in votes.failing
    # the failure is still visible to auditors, with the value masked
    assert MASK in Path(votes.docs_page).read_text(encoding="utf-8")
    personal = _validate(warehouse, "dim_region__personal_data")
    assert personal.failing == ["expect_column_values_to_be_null(email_like_column)"]
    assert personal.expectations[1].detail["partial_unexpected_list"] == ["region_name_en"]
    quarantine = _validate(warehouse, "raw_vote_quarantine")
    assert quarantine.failing == ["expect_column_values_to_be_between(unmasked_email_values)"]
    write_audit_report(connect=lambda: read_only(warehouse), quality_dir=warehouse.parent / "quality", run_id="pii")

    files = [p for p in (warehouse.parent / "quality").rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and "validations" in p.parts for p in files)
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert "planted.person" not in text, path
        # Any address at all in what we render (GX's bundled font files name their designer).
        if path.suffix in {".html", ".json", ".css", ".js"}:
            assert not EMAIL_RE.search(text), (path, EMAIL_RE.search(text))
    assert MASK in (warehouse.parent / "quality" / REPORT_JSON).read_text()


def test_audit_report_reconciles_with_the_load_ledger(warehouse: Path) -> None:
    for frame in ("raw_load_ledger", "fct_theme_rankings"):
        _validate(warehouse, frame)
    json_path, html_path, _ = write_audit_report(
        connect=lambda: read_only(warehouse), quality_dir=warehouse.parent / "quality", run_id="run-42"
    )
    report = json.loads(json_path.read_text())
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        ledger = {r[0]: r[1:] for r in conn.execute(
            "select sha256, file_name, records_read from raw.load_ledger").fetchall()}
        outcomes = dict(conn.execute(
            """select sha256, count(*) from (
                   select sha256 from raw.votes union all select sha256 from raw.vote_quarantine
                   union all select sha256 from raw.workshop_events union all select sha256 from raw.workshop_quarantine)
               group by sha256""").fetchall())
        quarantined = conn.execute("select count(*) from raw.vote_quarantine").fetchone()[0]
        accepted = conn.execute("select count(*) from raw.votes where outcome = 'accepted'").fetchone()[0]
    finally:
        conn.close()

    assert {f["sha256"] for f in report["files"]} == set(ledger)
    for f in report["files"]:
        file_name, records_read = ledger[f["sha256"]]
        assert (f["file_name"], f["records_read"]) == (file_name, records_read)
        assert f["records_with_outcome"] == sum(f["outcomes"].values()) == outcomes[f["sha256"]]
        assert f["balanced"] is True and len(f["sha256"]) == 64
    acc = report["accounted_for"]
    assert acc["all_records_accounted_for"] is True
    assert acc["records_read"] == sum(r[1] for r in ledger.values()) == acc["records_with_outcome"]
    assert acc["statement"].startswith("Every delivered record is accounted for")
    by_reason = {(q["source"], q["reason"]): q for q in report["quarantine"]}
    assert sum(q["records"] for (s, _), q in by_reason.items() if s == "votes") == quarantined
    assert all(1 <= len(q["examples"]) <= 3 for q in by_reason.values())
    assert [w["workshop_id"] for w in report["incomplete_workshops"]] == ["W3"]
    assert report["participant_count_mismatches"] == [
        {"workshop_id": "W2", "checked_in": 2, "reported": 5, "difference": -3}
    ]
    figures = {f["figure"]: f for f in report["published_figures"]["figures"]}
    assert figures["votes"]["recomputed_from_raw"] == figures["votes"]["published"] == accepted
    assert report["published_figures"]["all_match"] is True
    assert report["run_id"] == "run-42" and report["dbt_manifest_sha256"] in (None, *[report["dbt_manifest_sha256"]])
    assert {c["frame"] for c in report["quality_checks"]} == {"raw_load_ledger", "fct_theme_rankings"}
    page = next(c["docs_page"] for c in report["quality_checks"] if c["frame"] == "fct_theme_rankings")
    assert (warehouse.parent / "quality" / page).is_file()

    html = html_path.read_text()
    assert "Every delivered record is accounted for" in html and "run-42" in html
    assert not REMOTE_TAG.search(html) and "http://" not in html and "https://" not in html
    assert html_path.name == REPORT_HTML and not list(html_path.parent.glob(".*.tmp"))


def test_audit_report_names_a_file_that_does_not_balance(warehouse: Path) -> None:
    _execute(warehouse, f"delete from raw.votes where file_name = '{V2}' and response_id = 'R5'")
    _, _, report = write_audit_report(
        connect=lambda: read_only(warehouse), quality_dir=warehouse.parent / "quality", run_id="r"
    )
    acc = report["accounted_for"]
    assert acc["all_records_accounted_for"] is False and acc["unbalanced_files"] == [V2]
    assert acc["statement"].startswith("NOT every delivered record is accounted for") and V2 in acc["statement"]
    # the mart still counts R5: the published vote count no longer follows from raw
    assert report["published_figures"]["all_match"] is False


def test_old_results_and_their_pages_are_pruned(warehouse: Path) -> None:
    quality = warehouse.parent / "quality"
    pages = [Path(_validate(warehouse, "dim_region", run_name=f"run-{i}").docs_page) for i in range(3)]
    assert all(p.is_file() for p in pages)
    assert prune_results(quality, keep=2) == 1
    assert not pages[0].exists() and pages[1].is_file() and pages[2].is_file()
    assert len(list((quality / "gx" / "validations").rglob("*.json"))) == 2
    assert not (quality / "gx" / "validations" / "mart_dimension" / "run-0").exists()


def _frames(warehouse: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fct_vote_choices frame as the validation builds it, and by its plain SQL."""
    with read_only(warehouse) as conn:
        built = build_frame(conn, FRAMES["fct_vote_choices"])
        plain = conn.execute(resolve_tables(FCT_VOTE_CHOICES_SQL, Catalog(conn))).df()
    return built, plain


def test_vote_choices_masks_count_what_the_plain_sql_counts(
    warehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _execute(
        warehouse,
        # every Q5-02 choice twice (2 duplicates)
        "insert into marts.fct_vote_choices select * from marts.fct_vote_choices where option_code = 'Q5-02'",
        # a sixth option in one answer: Q1-03 (position 2) of one vote, plus Q1-05 .. Q1-08
        "insert into marts.fct_vote_choices select vote_key, 'Q1', 'Q1-0' || i, i "
        "from marts.fct_vote_choices, range(5, 9) t(i) where option_code = 'Q1-03' and choice_position = 2",
        # a choice of a vote fct_votes lacks; a choice without option (the mart's contract
        # forbids it; the rule must hold anyway), twice (1 more duplicate)
        "insert into marts.fct_vote_choices values (repeat('f', 32), 'Q3', 'Q3-01', 1)",
        "alter table marts.fct_vote_choices alter column option_code drop not null",
        "insert into marts.fct_vote_choices select vote_key, 'Q2', null, 3 from marts.fct_votes limit 1",
        "insert into marts.fct_vote_choices select vote_key, 'Q2', null, 3 from marts.fct_votes limit 1",
        # an option of another question
        "insert into marts.fct_vote_choices select vote_key, 'Q6', 'Q4-01', 1 from marts.fct_votes limit 1",
    )
    built, plain = _frames(warehouse)
    pd.testing.assert_frame_equal(built, plain)
    measures = built.iloc[0]
    assert measures["duplicate_choices"] == 3
    assert measures["answers_with_more_than_five_options"] == 1
    assert measures["choices_of_unknown_votes"] == 1
    assert measures["missing_required_values"] == 2
    assert measures["options_of_another_question"] == 1
    assert list(built["choice_position"].dropna()) == [1, 2, 3, 5, 6, 7, 8]

    # Too many distinct (question, option) pairs for the masks: the plain SQL answers.
    monkeypatch.setattr(frames_module, "_MAX_MASK_WORDS", 0)
    with read_only(warehouse) as conn:
        assert frames_module.vote_choices_frame(conn, Catalog(conn)) is None
        assert not conn.execute("select * from duckdb_tables() where temporary").fetchall()
    fallback, _ = _frames(warehouse)
    pd.testing.assert_frame_equal(fallback, plain)


def test_vote_choices_masks_agree_on_the_clean_warehouse(warehouse: Path) -> None:
    built, plain = _frames(warehouse)
    pd.testing.assert_frame_equal(built, plain)
    faults = ["duplicate_choices", "answers_with_more_than_five_options", "choices_of_unknown_votes"]
    assert built.iloc[0][faults].sum() == 0 and built.iloc[0]["choices"] > 0


def test_data_docs_are_rendered_once_for_batches_validated_without_them(warehouse: Path) -> None:
    quality = warehouse.parent / "quality"
    connect = lambda: read_only(warehouse)  # noqa: E731
    outcomes = [
        *validate_frames(["dim_region", "fct_votes"], connect=connect, quality_dir=quality, run_name="r", docs=False),
        *validate_frames(["raw_load_ledger"], connect=connect, quality_dir=quality, run_name="r", docs=False),
    ]
    pages = [Path(o.docs_page) for o in outcomes]
    assert all(p.is_relative_to(quality / "data_docs") and not p.exists() for p in pages)

    assert build_data_docs(quality) == 3
    index = (quality / "data_docs" / "index.html").read_text(encoding="utf-8")
    for page in pages:
        assert page.is_file() and "static/gvw/gvw_offline.js" in page.read_text(encoding="utf-8")
        assert page.relative_to(quality / "data_docs").as_posix() in index
    assert not REMOTE_TAG.search(index)
    assert (quality / "data_docs" / "expectations" / "fct_votes.html").is_file()
    # Nothing left to render: the next build renders no result page again.
    before = {p: p.stat().st_mtime_ns for p in pages}
    assert build_data_docs(quality) == 0
    assert {p: p.stat().st_mtime_ns for p in pages} == before


def test_quality_connections_never_get_more_memory_than_the_cap() -> None:
    conn = duckdb.connect(config={"memory_limit": "1GB"})

    def limit() -> int | None:
        return size_bytes(conn.execute("select current_setting('memory_limit')").fetchone()[0])

    try:
        assert limit() == pytest.approx(10**9, rel=1e-3)
        limit_memory(conn, "384MB")
        assert limit() == pytest.approx(384 * 10**6, rel=1e-3)
        conn.execute("set memory_limit = '100MB'")
        limit_memory(conn, "384MB")  # a lower limit stays
        assert limit() == pytest.approx(100 * 10**6, rel=1e-3)
    finally:
        conn.close()
    assert size_bytes("1.5GiB") == 3 * 2**29 and size_bytes("512 MB") == 512 * 10**6 and size_bytes("lots") is None
