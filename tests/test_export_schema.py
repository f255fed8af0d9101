"""Schema contract of the BI exports: every dataset's columns and types against the snapshots
committed under tests/schema_snapshots/. A removed or renamed column, or a changed type,
breaks BI reports: this test fails with a message saying which column of which dataset.

The export schema follows from the marts' dbt contracts (declared data types, enforced by
dbt), so it is checked here from a real `dbt parse`, without building the warehouse; the
end-to-end test checks the Parquet files themselves against the same snapshots.

To accept an intended change: GVW_UPDATE_SCHEMA_SNAPSHOTS=1 pytest tests/test_export_schema.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestration.export import DATASETS, DbtDocs
from orchestration.export.contract import contract_columns, snapshot_problems, write_snapshots
from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

SNAPSHOT_DIR = PROJECT_ROOT / "tests" / "schema_snapshots"


@pytest.fixture(scope="module")
def dbt_docs(tmp_path_factory: pytest.TempPathFactory) -> DbtDocs:
    """The docs and contracts of the real dbt project, parsed into a private target folder."""
    target = tmp_path_factory.mktemp("dbt_target")
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run(
        [str(dbt), "parse", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        check=True, capture_output=True, text=True, env={**os.environ, "GVW_DATA_DIR": str(target)},
    )
    return DbtDocs.load(target / "manifest.json")


def current_schemas(docs: DbtDocs) -> dict[str, list[dict[str, str]]]:
    return {spec.name: contract_columns(spec, docs.model(spec.model)) for spec in DATASETS}


def test_export_schemas_match_the_snapshots(dbt_docs: DbtDocs) -> None:
    current = current_schemas(dbt_docs)
    if os.environ.get("GVW_UPDATE_SCHEMA_SNAPSHOTS") == "1":
        write_snapshots(current, SNAPSHOT_DIR)
    problems = snapshot_problems(current, SNAPSHOT_DIR)
    assert not problems, "\n".join(problems)


def test_a_breaking_change_fails_with_a_clear_message(dbt_docs: DbtDocs, tmp_path: Path) -> None:
    current = current_schemas(dbt_docs)
    write_snapshots(current, tmp_path)
    votes = [dict(c) for c in current["votes"]]
    removed = votes.pop(0)["name"]
    votes[0]["type"] = "DOUBLE" if votes[0]["type"] != "DOUBLE" else "BIGINT"
    changed = votes[0]["name"]
    problems = snapshot_problems({**current, "votes": votes}, tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith("exports/votes: BREAKING change for BI readers")
    assert f"column '{removed}' removed or renamed" in problems[0]
    assert f"column '{changed}' changed type" in problems[0]
    assert "GVW_UPDATE_SCHEMA_SNAPSHOTS=1" in problems[0]

    added = {**current, "region": [*current["region"], {"name": "region_name_fr", "type": "VARCHAR"}]}
    (message,) = snapshot_problems(added, tmp_path)
    assert "not breaking" in message and "region_name_fr" in message

    dropped = {k: v for k, v in current.items() if k != "language"}
    assert snapshot_problems(dropped, tmp_path) == [
        "exports/language: BREAKING change for BI readers: the dataset is no longer published"
    ]


def test_snapshots_hold_only_bi_types() -> None:
    allowed = {"BOOLEAN", "INTEGER", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP WITH TIME ZONE", "VARCHAR"}
    snapshots = sorted(SNAPSHOT_DIR.glob("*.json"))
    assert {p.stem for p in snapshots} == {spec.name for spec in DATASETS}
    for path in snapshots:
        types = {c["type"] for c in json.loads(path.read_text(encoding="utf-8"))["columns"]}
        assert types <= allowed, (path.name, types - allowed)


def test_every_exported_column_is_documented_in_dbt(dbt_docs: DbtDocs) -> None:
    undocumented = [
        f"{spec.model}.{name}"
        for spec in DATASETS
        for name, description in dbt_docs.model(spec.model).columns.items()
        if not description
    ]
    missing_models = [spec.model for spec in DATASETS if not dbt_docs.model(spec.model).description]
    assert not undocumented and not missing_models, (
        f"the data dictionary needs dbt descriptions: columns {undocumented}, models {missing_models}"
    )


def test_the_export_test_fixture_mirrors_the_marts(dbt_docs: DbtDocs, tmp_path: Path) -> None:
    """tests/test_export.py builds mart tables by hand: they must keep the marts' columns."""
    import duckdb
    from test_export import build_fixture_warehouse

    warehouse = tmp_path / "fixture.duckdb"
    build_fixture_warehouse(warehouse, n_votes=20)
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        for spec in DATASETS:
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_name = ? order by ordinal_position",
                [spec.model],
            ).fetchall()]
            assert columns == list(dbt_docs.model(spec.model).columns), spec.model
    finally:
        conn.close()
