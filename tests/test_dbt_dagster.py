"""The dbt warehouse as Dagster assets: materialized for real on the fixture raw tables
(the ingest assets are left out of the selection; their tables are already there)."""

from __future__ import annotations

import importlib
import os
import subprocess
from functools import cached_property
from pathlib import Path
from types import ModuleType

import dagster as dg
import duckdb
import pytest

from orchestration.resources import WarehouseResource
from orchestration.settings import DBT_PROJECT_DIR
from raw_fixtures import V1, build_fixture_warehouse, dbt_executable, file_sha256

RAW_KEYS = {dg.AssetKey(["raw", t]) for t in
            ("votes", "vote_quarantine", "workshop_events", "workshop_quarantine", "load_ledger")}


def _manifest_is_stale(manifest: Path) -> bool:
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = (p for p in DBT_PROJECT_DIR.rglob("*")
               if p.suffix in {".sql", ".yml", ".csv"} and "target" not in p.parts and "logs" not in p.parts)
    return any(p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="module")
def warehouse_assets(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """orchestration.assets.warehouse, with the manifest prepared as setup does (`make
    setup` runs `dagster-dbt project prepare-and-package`); re-prepared only if stale."""
    from dagster_dbt import DbtCliResource

    from orchestration.dbt_project import dbt_project

    if _manifest_is_stale(dbt_project.manifest_path):
        with pytest.MonkeyPatch.context() as env:
            # The profile needs GVW_DATA_DIR even to parse; parsing opens no warehouse.
            env.setenv("GVW_DATA_DIR", str(tmp_path_factory.mktemp("parse")))
            DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()).cli(
                ["parse", "--quiet"], target_path=dbt_project.target_path
            ).wait()
    import orchestration.assets.warehouse as module

    return importlib.reload(module)  # bind to the manifest just checked


def _materialize(module: ModuleType, data_dir: Path, *extra_assets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [module.dbt_warehouse_assets, *extra_assets],
        resources={"dbt": module.build_dbt_resource(), "warehouse": WarehouseResource(data_dir=str(data_dir))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_asset_graph(warehouse_assets: ModuleType) -> None:
    assets = warehouse_assets.dbt_warehouse_assets
    keys = {k.to_user_string() for k in assets.keys}
    assert {"marts/fct_votes", "marts/fct_theme_rankings", "marts/rpt_headline_figures",
            "reference/countries", "staging/stg_raw__votes"} <= keys
    assert set(assets.group_names_by_key.values()) == {"warehouse"}
    # The sources are the ingestion assets' tables.
    upstream = {k for k in assets.dependency_keys if k not in assets.keys}
    assert upstream == RAW_KEYS
    checks = {(k.asset_key.to_user_string(), k.name) for k in assets.check_keys}
    assert ("marts/rpt_headline_figures", "assert_participants_are_votes_plus_workshop_participants") in checks
    assert ("staging/stg_raw__load_ledger", "assert_every_raw_record_has_one_outcome") in checks
    assert ("marts/fct_votes", "unique_fct_votes_vote_key") in checks


def test_materialize_with_checks_and_row_counts(
    warehouse_assets: ModuleType, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_fixture_warehouse(data_dir / "warehouse.duckdb")
    # The warehouse resource's directory wins over whatever GVW_DATA_DIR says.
    elsewhere = data_dir.parent / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("GVW_DATA_DIR", str(elsewhere))

    result = _materialize(warehouse_assets, data_dir)

    assert result.success
    assets = warehouse_assets.dbt_warehouse_assets
    materializations = {e.asset_key: e.event_specific_data.materialization
                        for e in result.get_asset_materialization_events()}
    assert set(materializations) == set(assets.keys)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len(assets.check_keys)
    assert all(e.passed for e in evaluations)

    def row_count(key: str) -> int:
        return materializations[dg.AssetKey.from_user_string(key)].metadata["dagster/row_count"].value

    assert row_count("marts/fct_votes") == 5
    assert row_count("marts/fct_participation") == 10
    assert row_count("marts/fct_theme_rankings") == 31 * 60
    assert row_count("reference/countries") == 249
    assert not (elsewhere / "warehouse.duckdb").exists()
    # dbt's artifacts of the run are kept in the data directory, not in the project.
    assert list((data_dir / "dbt_runs").glob("*/run_results.json"))
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select participants from marts.rpt_headline_figures").fetchone() == (10,)


def test_failing_test_stops_downstream(warehouse_assets: ModuleType, data_dir: Path) -> None:
    build_fixture_warehouse(data_dir / "warehouse.duckdb")
    # An accepted vote from a country the reference data lacks: it has no region and no
    # UN membership, so error-severity not_null tests on int_votes_accepted fail. (The ledger
    # is updated so that the reconciliation test still passes.)
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as conn:
        conn.execute(
            """
            insert into raw.votes values (?, ?, 7, 'R6', timestamp '2017-09-05 10:00:00', 'en', 'ZZ',
                'public', 4, '25_34', null, 'Q1-01', '', '', '', '', '', 'accepted')
            """,
            [file_sha256(V1), V1],
        )
        conn.execute("update raw.load_ledger set records_read = records_read + 1 where sha256 = ?", [file_sha256(V1)])

    @dg.asset(deps=[dg.AssetKey(["marts", "rpt_headline_figures"])])
    def headline_consumer() -> None:
        """Stands for any asset built on the marts (exports, validation)."""

    result = _materialize(warehouse_assets, data_dir, headline_consumer)

    assert not result.success
    failed = {e.check_name for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {"not_null_int_votes_accepted_region_code", "not_null_int_votes_accepted_is_un_member"}
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Built: what does not depend on the votes. Not built: everything downstream of the failure.
    assert {"marts/dim_country", "marts/fct_workshops", "marts/rpt_quarantine_summary"} <= materialized
    assert not materialized & {"marts/fct_votes", "marts/fct_participation", "marts/fct_theme_rankings",
                               "marts/rpt_headline_figures", "headline_consumer"}


def test_old_dbt_run_artifacts_are_pruned(warehouse_assets: ModuleType, tmp_path: Path) -> None:
    runs = tmp_path / "dbt_runs"
    kept = warehouse_assets.DBT_RUNS_KEPT
    for n in range(kept + 3):
        (runs / f"run{n:02d}").mkdir(parents=True)
        os.utime(runs / f"run{n:02d}", (1_000_000 + n, 1_000_000 + n))
    new = warehouse_assets._new_run_target_path(runs, "0123456789abcdef")
    survivors = sorted(p.name for p in runs.iterdir())
    # the newest kept-1 remain, so that with the new run there are `kept`
    assert survivors == [f"run{n:02d}" for n in range(4, kept + 3)]
    assert new.parent == runs and new.name.startswith("01234567-") and not new.exists()


def _dbt_log_codes(run_dir: Path) -> set[str]:
    import json

    return {json.loads(line)["info"]["code"] for line in (run_dir / "dbt.log").read_text().splitlines() if line.strip()}


def test_a_later_run_on_the_same_data_dir_parses_only_what_changed(
    warehouse_assets: ModuleType, data_dir: Path
) -> None:
    build_fixture_warehouse(data_dir / "warehouse.duckdb")
    # two seeds only (countries has a relationships test to regions): a quick dbt build
    seeds = [dg.AssetKey(["reference", "countries"]), dg.AssetKey(["reference", "regions"])]

    def build_one_seed() -> Path:
        result = dg.materialize(
            [warehouse_assets.dbt_warehouse_assets], selection=seeds,
            resources={"dbt": warehouse_assets.build_dbt_resource(), "warehouse": WarehouseResource(data_dir=str(data_dir))},
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success
        return max((p for p in (data_dir / "dbt_runs").iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)

    first = build_one_seed()
    # I024 = UnableToPartialParse: the state prepared at setup names another warehouse path
    assert "I024" in _dbt_log_codes(first)
    assert (data_dir / "dbt_runs" / warehouse_assets.PARSE_STATE_FILE).exists()
    second = build_one_seed()
    assert second != first
    assert "I024" not in _dbt_log_codes(second)


def test_dbt_resource_skips_dagster_dbts_start_up_work(warehouse_assets: ModuleType) -> None:
    # The resource overrides two private hooks of DbtCliResource (a `dbt --version`
    # subprocess and an in-process dbt adapter, run before every command): if an upgrade
    # of dagster-dbt renames them, the overrides would silently stop applying.
    from dagster_dbt import DbtCliResource

    assert isinstance(DbtCliResource.__dict__.get("_cli_version"), cached_property)
    assert callable(DbtCliResource.__dict__.get("_initialize_dbt_core_adapter"))
    resource = warehouse_assets.build_dbt_resource()
    assert resource._initialize_dbt_core_adapter(["build"]) is None
    # the version it reports is the version of the dbt that runs: asked of the interpreter
    # of the dbt executable (`dbt --version` would also look up the latest release online)
    interpreter = Path(resource.dbt_executable).read_text().splitlines()[0].removeprefix("#!").strip()
    reported = subprocess.run([interpreter, "-c", "from dbt.__version__ import version; print(version)"],
                              capture_output=True, text=True, check=True)
    assert str(resource._cli_version) == reported.stdout.strip()
