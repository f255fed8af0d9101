"""The quality checks as Dagster asset checks, run for real: a failing blocking check skips
the Parquet exports downstream of its mart, and says which expectation failed.

The warehouse is the hand-made raw layer of tests/raw_fixtures.py built into marts by the
project's dbt (once per session, outside Dagster to keep the test fast); the checks, the
exports and the audit report then run as the project's real Dagster assets. The slow test
runs the whole pipeline from the generator on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from test_quality import build_once

from orchestration.assets.export import export_assets
from orchestration.assets.ingest import ingest_asset_checks, ingest_assets
from orchestration.assets.quality import (
    AUDIT_REPORT_KEY,
    asset_key_of_table,
    quality_asset_checks,
    quality_assets,
)
from orchestration.assets.warehouse import build_dbt_resource, dbt_warehouse_assets
from orchestration.quality.frames import MART_TABLES, RAW_TABLES
from orchestration.resources import WarehouseResource

RAW_KEYS = [dg.AssetKey(["raw", t]) for t in RAW_TABLES]
EXPORT_KEYS = [k for a in export_assets for k in a.keys]


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_once(tmp_path_factory)


def _defs(data_dir: Path, *jobs: dg.UnresolvedAssetJobDefinition) -> dg.Definitions:
    return dg.Definitions(
        assets=[*ingest_assets, dbt_warehouse_assets, *export_assets, *quality_assets],
        asset_checks=[*ingest_asset_checks, *quality_asset_checks],
        jobs=list(jobs),
        resources={"dbt": build_dbt_resource(), "warehouse": WarehouseResource(data_dir=str(data_dir))},
        executor=dg.in_process_executor,
    )


def _run(data_dir: Path, selection: dg.AssetSelection) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("quality_test_job", selection=selection)
    return _defs(data_dir, job).resolve_job_def("quality_test_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_every_table_has_its_suites_as_checks(data_dir: Path) -> None:
    defs = _defs(data_dir)
    defs.resolve_all_job_defs()  # the graph (checks, their extra dependencies) is valid
    specs = {(s.asset_key, s.name): s for c in quality_asset_checks for s in c.check_specs}
    marts = {k for k in dbt_warehouse_assets.keys if k.path[0] == "marts"}
    assert marts == {asset_key_of_table(t) for t in MART_TABLES}  # no mart escapes the checks
    for key in marts:
        assert specs[(key, "gx_mart_personal_data")].blocking
    warning = specs[(asset_key_of_table("fct_workshops"), "gx_workshop_participant_counts")]
    assert not warning.blocking
    assert specs[(dg.AssetKey(["raw", "load_ledger"]), "gx_raw_load_ledger")].blocking
    assert all(s.blocking for s in specs.values() if s.name != "gx_workshop_participant_counts")


def test_failing_mart_check_blocks_the_exports_and_names_the_expectation(
    built_warehouse: Path, data_dir: Path
) -> None:
    shutil.copy(built_warehouse, data_dir / "warehouse.duckdb")
    our_checks = [k for c in quality_asset_checks for k in c.check_keys]
    # Every GX check, the exports and the audit report (ingest and dbt already ran).
    first = _run(data_dir, dg.AssetSelection.checks(*our_checks) | dg.AssetSelection.assets(*EXPORT_KEYS,
                                                                                             AUDIT_REPORT_KEY))
    assert first.success, [e.message for e in first.all_events if e.is_failure]
    evaluations = _evaluations(first)
    ours = {k: e for k, e in evaluations.items() if k[1].startswith("gx_")}
    assert len(ours) == sum(len(c.check_specs) for c in quality_asset_checks)
    failed = {k for k, e in ours.items() if not e.passed}
    assert failed == {("marts/fct_workshops", "gx_workshop_participant_counts")}  # the fixture's W2: a warning
    assert ours[("marts/fct_workshops", "gx_workshop_participant_counts")].severity == dg.AssetCheckSeverity.WARN
    theme = ours[("marts/fct_theme_rankings", "gx_fct_theme_rankings")].metadata
    assert theme["expectations_failed"].value == 0 and theme["expectations_evaluated"].value >= 10
    assert Path(theme["data_docs_page"].value).is_file()
    materialized = {e.asset_key for e in first.get_asset_materialization_events()}
    assert set(EXPORT_KEYS) <= materialized and AUDIT_REPORT_KEY in materialized
    quality_dir = data_dir / "quality"
    report = json.loads((quality_dir / "audit_report.json").read_text())
    assert report["run_id"] == first.run_id and report["accounted_for"]["all_records_accounted_for"]
    published = (data_dir / "exports" / "manifest.json").read_text()
    # The audit report rendered the Data Docs of the whole run: every check's page, indexed.
    index = (quality_dir / "data_docs" / "index.html").read_text(encoding="utf-8")
    for evaluation in ours.values():
        page = Path(evaluation.metadata["data_docs_page"].value)
        assert page.is_file() and page.relative_to(quality_dir / "data_docs").as_posix() in index

    # A run of checks without the audit report renders the pages of its checks itself.
    region_key = asset_key_of_table("dim_region")
    region = _run(data_dir, dg.AssetSelection.checks(dg.AssetCheckKey(region_key, "gx_mart_dimension")))
    assert region.success
    page = Path(_evaluations(region)[(region_key.to_user_string(), "gx_mart_dimension")].metadata[
        "data_docs_page"].value)
    assert page.is_file() and first.run_id not in str(page) and region.run_id in str(page)

    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"))
    try:
        conn.execute("update marts.fct_theme_rankings set vote_share = 1.5")
    finally:
        conn.close()
    theme_key = asset_key_of_table("fct_theme_rankings")
    theme_checks = [dg.AssetCheckKey(theme_key, n) for n in ("gx_fct_theme_rankings", "gx_mart_personal_data")]
    second = _run(data_dir, dg.AssetSelection.checks(*theme_checks) | dg.AssetSelection.assets(*EXPORT_KEYS))

    assert not second.success
    check = _evaluations(second)[(theme_key.to_user_string(), "gx_fct_theme_rankings")]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["failing_expectations"].value == "expect_column_values_to_be_between(vote_share)"
    assert check.metadata["expectations_failed"].value == 1
    assert "expect_column_values_to_be_between(vote_share)" in (check.description or "")
    page = Path(check.metadata["data_docs_page"].value)
    assert page.is_file() and "vote_share" in page.read_text()
    # The export did not run: nothing materialized, the previous version stays published.
    assert not {e.asset_key for e in second.get_asset_materialization_events()} & set(EXPORT_KEYS)
    # The export step was part of the run but never started: its upstream check failed.
    assert "export_datasets" in {node.name for node in second.job_def.nodes}
    started = {e.step_key for e in second.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert "gx_checks_fct_theme_rankings" in started and "export_datasets" not in started
    assert (data_dir / "exports" / "manifest.json").read_text() == published
    # The failing check wrote the audit report of this run, naming the failed suite.
    report = json.loads((quality_dir / "audit_report.json").read_text())
    assert report["run_id"] == second.run_id
    failing = {c["frame"]: c["failing"] for c in report["quality_checks"] if not c["success"]}
    assert failing["fct_theme_rankings"] == ["expect_column_values_to_be_between(vote_share)"]


@pytest.mark.slow
def test_checks_pass_on_the_generated_reference_zone(data_dir: Path) -> None:
    """Generator -> ingestion -> dbt -> checks -> exports -> audit report, all real."""
    from orchestration.generate import generate_landing_zone
    from orchestration.quality.offline import REMOTE_RESOURCE

    key = generate_landing_zone(data_dir, scale=0.02, seed=2017)
    result = _run(data_dir, dg.AssetSelection.all())
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    ours = {k: e for k, e in _evaluations(result).items() if k[1].startswith("gx_")}
    assert len(ours) == sum(len(c.check_specs) for c in quality_asset_checks)
    # Only the warning may fail (the generator plants participant-count mismatches).
    assert {k for k, e in ours.items() if not e.passed} <= {("marts/fct_workshops", "gx_workshop_participant_counts")}

    quality = data_dir / "quality"
    report = json.loads((quality / "audit_report.json").read_text())
    assert report["accounted_for"]["all_records_accounted_for"] is True
    assert report["published_figures"]["all_match"] is True
    figures = {f["figure"]: f["published"] for f in report["published_figures"]["figures"]}
    expected = key.get("figures", {})
    for name in ("votes", "workshops", "workshop_participants", "participants"):
        if name in expected:
            assert figures[name] == expected[name], name
    conn = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        ledger = dict(conn.execute("select sha256, records_read from raw.load_ledger").fetchall())
    finally:
        conn.close()
    assert {f["sha256"]: f["records_read"] for f in report["files"]} == ledger
    for page in [quality / "audit_report.html", *(quality / "data_docs").rglob("*.html")]:
        assert not REMOTE_RESOURCE.search(page.read_text(encoding="utf-8")), page
