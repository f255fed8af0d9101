"""The reference landing zone (the generator is the independent oracle): ingestion must give
exactly the outcomes of its answer key, per file and in total."""

from __future__ import annotations

import json

import duckdb
import pytest

from landing_builders import ingest
from orchestration.generate import generate_landing_zone
from orchestration.ingest import reconcile


@pytest.mark.slow
def test_scale_1_outcomes_equal_the_answer_key(tmp_path):
    key = generate_landing_zone(tmp_path, scale=1, seed=2017)
    assert json.loads((tmp_path / "expected.json").read_text(encoding="utf-8")) == key
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    report = ingest(conn, tmp_path / "landing")

    for source in ("votes", "workshops"):
        expected = {k: n for k, n in key["outcomes"][source].items() if n}
        assert report.totals[source] == expected, source
    assert report.records_read == key["records"]["votes"] + key["records"]["workshops"]
    per_file = {f.file_name: f for f in report.files}
    assert set(per_file) == set(key["files"])
    for name, expected in key["files"].items():
        got = per_file[name]
        assert got.records_read == expected["records"], name
        assert got.outcomes == {k: n for k, n in expected["outcomes"].items() if n}, name
        if "extra_columns" in expected:
            assert [c.lower() for c in got.extra_columns] == expected["extra_columns"], name
    assert reconcile(conn).ok
    # the headline figures the accepted records give
    votes = conn.execute("select count(*) from raw.votes where outcome = 'accepted'").fetchone()[0]
    assert votes == key["figures"]["votes"]
    workshops = conn.execute("select count(distinct workshop_id) from raw.workshop_events "
                             "where outcome = 'accepted'").fetchone()[0]
    assert workshops == key["figures"]["workshops"]
