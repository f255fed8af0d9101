"""BI exports against a small warehouse of mart tables built here (same names and columns as
the dbt marts, with a few DuckDB-specific types the export must convert), and a dbt-manifest
shaped file of docs. The real pipeline is exercised end to end in test_export_e2e.py."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from orchestration.export import (
    DATASETS,
    DbtDocs,
    ExportError,
    ExportOptions,
    PrivacyError,
    publish_exports,
    read_manifest,
)
from orchestration.export.contract import schema_changes
from orchestration.export.datasets import FORBIDDEN_COLUMN_PATTERN
from orchestration.export.publish import CRASH_POINTS
from orchestration.resources import WarehouseResource
from orchestration.settings import PROJECT_ROOT

N_VOTES = 2000
# Few enough rows that the three big facts of the fixture get partitioned.
SMALL_PARTITION_THRESHOLD = 1000
BI_ARROW_TYPES = {"bool", "int32", "int64", "double", "date32[day]", "timestamp[us, tz=UTC]", "string"}

FIXTURE_SQL = """
create schema marts;
create schema raw;
create type workshop_kind as enum ('kickoff', 'regional', 'professional_unit', 'national', 'self_facilitated');

create table marts.dim_region as
select * from (values
    ('africa', 'Africa', 1), ('asia_oceania', 'Asia and Oceania', 2), ('europe', 'Europe', 3),
    ('latin_america_caribbean', 'Latin America and the Caribbean', 4),
    ('middle_east_north_africa', 'Middle East and North Africa', 5), ('north_america', 'North America', 6)
) t(region_code, region_name_en, sort_order);

create table marts.dim_country as
select t.*, r.region_name_en, t.country_code <> 'HK' as is_un_member
from (values
    ('KE', 'Kenya', 'africa'), ('NG', 'Nigeria', 'africa'), ('CN', 'China', 'asia_oceania'),
    ('HK', 'Hong Kong', 'asia_oceania'), ('FR', 'France', 'europe'), ('DE', 'Germany', 'europe'),
    ('BR', 'Brazil', 'latin_america_caribbean'), ('MX', 'Mexico', 'latin_america_caribbean'),
    ('EG', 'Egypt', 'middle_east_north_africa'), ('MA', 'Morocco', 'middle_east_north_africa'),
    ('US', 'United States', 'north_america'), ('CA', 'Canada', 'north_america')
) t(country_code, country_name, region_code)
join marts.dim_region r using (region_code);

create table marts.dim_language as
select * from (values ('ar', 'Arabic', 'العربية', 1), ('zh', 'Chinese', '中文', 2), ('en', 'English', 'English', 3),
    ('fr', 'French', 'Français', 4), ('de', 'German', 'Deutsch', 5), ('ru', 'Russian', 'Русский', 6),
    ('es', 'Spanish', 'Español', 7)) t(language_code, language_name_en, language_name_native, sort_order);

create table marts.dim_library_type as
select code as library_type_code, upper(code[1]) || code[2:] as label_en, '图书馆' as label_zh, cast(n as integer) as sort_order
from (select unnest(['national', 'academic', 'public', 'school', 'special', 'other']) as code,
             unnest(range(1, 7)) as n);

create table marts.dim_age_group as
select * from (values ('under_25', 'Under 25', null, 24, 1), ('25_34', '25-34', 25, 34, 2),
    ('35_44', '35-44', 35, 44, 3), ('45_54', '45-54', 45, 54, 4), ('55_64', '55-64', 55, 64, 5),
    ('65_plus', '65 and over', 65, null, 6)) t(age_group_code, label_en, min_age, max_age, sort_order);

create table marts.dim_experience_band as
select * from (values ('0_4', '0-4 years', 0, 4, 1), ('5_14', '5-14 years', 5, 14, 2),
    ('15_plus', '15 years and more', 15, null, 3)) t(experience_band_code, label_en, min_years, max_years, sort_order);

create table marts.dim_question as
select 'Q' || q as question_code, cast(q as integer) as question_number,
       'سؤال ' || q as question_ar, '问题 ' || q as question_zh, 'Question ' || q as question_en,
       'Question ' || q as question_fr, 'Frage ' || q as question_de, 'Вопрос ' || q as question_ru,
       'Pregunta ' || q as question_es
from range(1, 7) r(q);

create table marts.dim_option as
select 'Q' || q || '-' || lpad(cast(o as varchar), 2, '0') as option_code, 'Q' || q as question_code,
       cast(o as integer) as option_number, 'Option ' || o || ' of Q' || q as label_en, '选项' as label_zh
from range(1, 7) r(q), range(1, 11) s(o);

-- votes: north_america gets only 3 votes (small cells in its scope); option Q6-10 only 2 (a small global cell)
create temp table fixture_votes as
select i,
    case when i < 3 then 'north_america'
         else ['africa', 'asia_oceania', 'europe', 'latin_america_caribbean', 'middle_east_north_africa'][i % 5 + 1]
    end as region_code
from range($n_votes) r(i);

create table marts.fct_votes as
select
    md5('vote-' || i) as vote_key,
    case when i % 3 = 0 then null else md5('respondent-' || i) end as respondent_key,
    -- naive TIMESTAMP: the warehouse stores UTC instants without a zone
    timestamp '2017-08-21 00:00:00' + to_seconds((i * 7919) % (41 * 86400)) as submitted_at_utc,
    cast(timestamp '2017-08-21 00:00:00' + to_seconds((i * 7919) % (41 * 86400)) as date) as submitted_on,
    ['ar', 'zh', 'en', 'fr', 'de', 'ru', 'es'][i % 7 + 1] as language_code,
    c.country_code,
    v.region_code,
    ['national', 'academic', 'public', 'school', 'special', 'other'][i % 6 + 1] as library_type_code,
    ['under_25', '25_34', '35_44', '45_54', '55_64', '65_plus'][i % 6 + 1] as age_group_code,
    cast(i % 41 as utinyint) as years_experience,
    case when i % 41 < 5 then '0_4' when i % 41 < 15 then '5_14' else '15_plus' end as experience_band_code,
    cast(6 as integer) as questions_answered,
    cast(0 as integer) as options_chosen
from fixture_votes v
join (select region_code, list(country_code order by country_code) as codes from marts.dim_country group by all) rc
    using (region_code)
cross join lateral (select rc.codes[i % len(rc.codes) + 1] as country_code) c;

create table marts.fct_vote_choices as
select md5('vote-' || i) as vote_key, 'Q' || q as question_code,
       'Q' || q || '-0' || ((i * 7 + q * 3 + k * 5) % 9 + 1) as option_code, cast(k as integer) as choice_position
from fixture_votes, range(1, 7) r(q), range(1, 4) s(k)
where k <= (i + q) % 3 + 1
union all
select md5('vote-' || i), 'Q6', 'Q6-10', 4 from fixture_votes where i in (10, 11);

update marts.fct_votes v set options_chosen = c.n
from (select vote_key, count(*) as n from marts.fct_vote_choices group by vote_key) c
where v.vote_key = c.vote_key;

create table marts.fct_workshops as
select
    'W' || lpad(cast(w as varchar), 3, '0') as workshop_id,
    cast(['kickoff', 'regional', 'professional_unit', 'national', 'self_facilitated'][w % 5 + 1] as workshop_kind) as workshop_kind_code,
    'Workshop ' || w || ': libraries | futures' as workshop_title,
    date '2017-03-01' + cast(w * 11 as integer) as held_on,
    ['FR', 'KE', 'CN', 'BR', 'EG', 'US'][w % 6 + 1] as country_code,
    ['europe', 'africa', 'asia_oceania', 'latin_america_caribbean', 'middle_east_north_africa', 'north_america'][w % 6 + 1] as region_code,
    'City ' || w as city,
    ['en', 'fr', 'zh', 'es', 'ar', 'en'][w % 6 + 1] as language_code,
    cast(5 + w as integer) as participants,
    cast(5 + w + (w % 4 = 0)::int as integer) as reported_participants,
    w % 4 = 0 as participants_mismatch
from range(1, 13) r(w);

create table marts.fct_workshop_answers as
select 'W' || lpad(cast(w as varchar), 3, '0') as workshop_id, 'Q' || q as question_code,
       cast(k as tinyint) as answer_rank,
       'Q' || q || '-' || lpad(cast((w + q + k) % 10 + 1 as varchar), 2, '0') as option_code,
       cast(6 - k as integer) as borda_points
from range(1, 13) r(w), range(1, 7) s(q), range(1, 6) t(k);

create table marts.fct_participation as
select vote_key as participant_key, 'vote' as channel, vote_key, cast(null as varchar) as workshop_id,
       submitted_on as participated_on, v.country_code, v.region_code, c.is_un_member,
       library_type_code, age_group_code, cast(years_experience as integer) as years_experience, experience_band_code
from marts.fct_votes v join marts.dim_country c using (country_code)
union all
select md5(w.workshop_id || '|P' || p), 'workshop', null, w.workshop_id, w.held_on, w.country_code, w.region_code,
       w.country_code <> 'HK', 'public', '35_44', cast(p % 30 as integer),
       case when p % 30 < 5 then '0_4' when p % 30 < 15 then '5_14' else '15_plus' end
from marts.fct_workshops w, range(1, 30) r(p)
where p <= w.participants;

-- sum() of integers is HUGEINT in DuckDB: the export must publish BIGINT
create table marts.rpt_headline_figures as
select
    count(*) filter (where channel = 'vote') as votes,
    (select count(*) from marts.fct_workshops) as workshops,
    count(*) filter (where channel = 'workshop') as workshop_participants,
    count(*) as participants,
    sum(years_experience) as library_experience_years,
    count(distinct case when is_un_member then country_code end) as un_member_states,
    count(distinct country_code) as countries_and_areas,
    count(distinct age_group_code) as age_groups_represented,
    count(distinct library_type_code) as library_types_represented,
    count(distinct region_code) as regions_represented
from marts.fct_participation;

create table marts.fct_theme_rankings as
with vote_scopes as (
    select vote_key, 'global' as scope_type, 'all' as scope_value from marts.fct_votes
    union all select vote_key, 'region', region_code from marts.fct_votes
    union all select vote_key, 'library_type', library_type_code from marts.fct_votes
    union all select vote_key, 'language', language_code from marts.fct_votes
),
workshop_scopes as (
    select workshop_id, 'global' as scope_type, 'all' as scope_value from marts.fct_workshops
    union all select workshop_id, 'region', region_code from marts.fct_workshops
    union all select workshop_id, 'language', language_code from marts.fct_workshops
),
grid as (
    select s.scope_type, s.scope_value, o.question_code, o.option_code
    from (select distinct scope_type, scope_value from vote_scopes) s cross join marts.dim_option o
),
choices as (
    select vs.scope_type, vs.scope_value, c.question_code, c.option_code, c.vote_key
    from marts.fct_vote_choices c join vote_scopes vs using (vote_key)
),
option_votes as (select scope_type, scope_value, option_code, count(*) as votes from choices group by all),
answering as (select scope_type, scope_value, question_code, count(distinct vote_key) as n from choices group by all),
points as (
    select ws.scope_type, ws.scope_value, a.option_code, sum(a.borda_points) as p
    from marts.fct_workshop_answers a join workshop_scopes ws using (workshop_id) group by all
),
tallied as (
    select g.scope_type, g.scope_value, g.question_code, g.option_code,
           coalesce(ov.votes, 0) as votes, coalesce(an.n, 0) as n,
           case when g.scope_type in ('global', 'region', 'language') then coalesce(pt.p, 0) end as workshop_points
    from grid g
    left join option_votes ov on g.scope_type = ov.scope_type and g.scope_value = ov.scope_value and g.option_code = ov.option_code
    left join answering an on g.scope_type = an.scope_type and g.scope_value = an.scope_value and g.question_code = an.question_code
    left join points pt on g.scope_type = pt.scope_type and g.scope_value = pt.scope_value and g.option_code = pt.option_code
)
select scope_type, scope_value, question_code, option_code,
    cast(votes as bigint) as votes,
    -- FLOAT and DECIMAL in the fixture: the export publishes shares as DOUBLE
    cast(case when n = 0 then 0.0 else votes / n end as float) as vote_share,
    cast(row_number() over (partition by scope_type, scope_value, question_code order by votes desc, option_code) as integer) as vote_rank,
    cast(workshop_points as decimal(18, 0)) as workshop_points,
    cast(case when workshop_points is not null then row_number() over (
        partition by scope_type, scope_value, question_code order by workshop_points desc, option_code) end as integer) as workshop_rank
from tallied;

create table marts.rpt_quarantine_summary as
select * from (values ('votes', 'malformed_row', 3), ('votes', 'duplicate', 2), ('votes', 'test_submission', 0),
    ('workshops', 'malformed_json', 1), ('workshops', 'incomplete_workshop', 7)) t(source, reason, records);

create table raw.load_ledger as
select * from (values
    ('a1', 'votes', 'votes/export_1.csv', 1, 1000, timestamp '2017-10-02 08:00:00', 'run-1', 1500, 'loaded', '', ''),
    ('a2', 'votes', 'votes/export_2.csv', 1, 500, timestamp '2017-10-03 08:00:00', 'run-1', 505, 'loaded', '', ''),
    ('b1', 'workshops', 'workshops/events.jsonl', 1, 900, timestamp '2017-10-02 08:00:00', 'run-1', 1300, 'loaded', '', '')
) t(sha256, source, file_name, delivery_seq, size_bytes, first_seen_at, run_id, records_read, file_status, extra_columns, message);
"""


def build_fixture_warehouse(path: Path, n_votes: int = N_VOTES) -> None:
    conn = duckdb.connect(str(path))
    try:
        for statement in FIXTURE_SQL.split(";\n"):
            if statement.strip():
                conn.execute(statement, {"n_votes": n_votes} if "$n_votes" in statement else None)
    finally:
        conn.close()


def build_fixture_manifest(warehouse: Path, target: Path) -> None:
    """Docs in the shape of dbt's manifest.json (nodes of resource_type model)."""
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = conn.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' order by table_name, ordinal_position"
        ).fetchall()
    finally:
        conn.close()
    nodes: dict[str, dict] = {}
    for table, column in rows:
        node = nodes.setdefault(f"model.global_vision_warehouse.{table}", {
            "resource_type": "model", "name": table, "package_name": "global_vision_warehouse",
            "schema": "marts", "relation_name": f'"warehouse"."marts"."{table}"',
            "description": f"Fixture docs of {table}:\n  a mart.", "meta": {}, "config": {"meta": {}}, "columns": {},
        })
        if (table, column) != ("fct_workshops", "city"):  # one column left undocumented on purpose
            node["columns"][column] = {"name": column, "description": f"{column} of {table} | documented."}
    nodes["model.global_vision_warehouse.fct_votes"]["config"]["meta"]["grain"] = "One vote (grain from dbt meta)."
    target.write_text(json.dumps({
        "metadata": {"project_name": "global_vision_warehouse", "dbt_version": "1.11.0", "generated_at": "2017-10-01T00:00:00Z"},
        "nodes": nodes,
    }), encoding="utf-8")


@pytest.fixture()
def fixture_env(data_dir: Path) -> dict[str, Path]:
    warehouse = data_dir / "warehouse.duckdb"
    build_fixture_warehouse(warehouse)
    manifest = data_dir / "dbt_manifest.json"
    build_fixture_manifest(warehouse, manifest)
    return {"data_dir": data_dir, "warehouse": warehouse, "manifest": manifest, "exports": data_dir / "exports"}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One publish shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("published")
    env = {"data_dir": root, "warehouse": root / "warehouse.duckdb", "manifest": root / "dbt_manifest.json",
           "exports": root / "exports"}
    build_fixture_warehouse(env["warehouse"])
    build_fixture_manifest(env["warehouse"], env["manifest"])
    publish(env)
    return env


def publish(env: dict[str, Path], run_id: str = "test-run", **overrides):
    options = ExportOptions(**{"exports_dir": env["exports"], "partition_min_rows": SMALL_PARTITION_THRESHOLD, **overrides})
    conn = duckdb.connect(str(env["warehouse"]), read_only=True)
    try:
        return publish_exports(conn, options, DbtDocs.load(env["manifest"]), run_id=run_id)
    finally:
        conn.close()


def warehouse_rows(env: dict[str, Path], model: str) -> int:
    conn = duckdb.connect(str(env["warehouse"]), read_only=True)
    try:
        return conn.execute(f"select count(*) from marts.{model}").fetchone()[0]
    finally:
        conn.close()


def _normalise(table: pa.Table, partition_key: str | None, source_column: str | None) -> pa.Table:
    """Same column set and string/timestamp flavours whatever the reader, rows sorted."""
    if partition_key and partition_key in table.column_names:
        key = table.column(partition_key).cast(pa.string())
        assert key.equals(table.column(source_column).cast(pa.string())), "hive key differs from its column"
        table = table.drop_columns([partition_key])
    fields = []
    for f in table.schema:
        t = f.type
        if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_dictionary(t):
            t = pa.string()
        elif pa.types.is_timestamp(t):
            t = pa.timestamp(t.unit, tz="UTC")
        fields.append(pa.field(f.name, t))
    table = table.cast(pa.schema(fields))
    return table.sort_by([(name, "ascending") for name in table.column_names])


def read_every_way(exports: Path, name: str, entry: dict) -> dict[str, pa.Table]:
    folder = exports / name
    glob = f"{folder}/**/*.parquet"
    conn = duckdb.connect()
    try:
        conn.execute("set TimeZone = 'UTC'")
        tables = {"duckdb": conn.execute("select * from read_parquet(?, hive_partitioning = false)", [glob]).to_arrow_table()}
    finally:
        conn.close()
    tables["pyarrow"] = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    tables["pandas"] = pa.Table.from_pandas(pd.read_parquet(folder, dtype_backend="pyarrow"), preserve_index=False)
    tables["polars"] = pl.read_parquet(glob).to_arrow()
    part = entry["partitioning"] or {}
    return {reader: _normalise(t, part.get("key"), part.get("source_column")) for reader, t in tables.items()}


def assert_manifest_consistent(exports: Path) -> dict:
    """manifest.json describes files that exist, with the recorded sizes and SHA-256."""
    manifest = read_manifest(exports / "manifest.json")
    assert manifest is not None
    for name, entry in manifest["datasets"].items():
        assert entry["files"], name
        for f in entry["files"]:
            path = exports / f["path"]
            assert path.is_file(), f"{name}: {f['path']} missing"
            assert path.stat().st_size == f["bytes"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"], f"{name}: {f['path']} hash differs"
        assert sum(f["rows"] for f in entry["files"]) == entry["rows"]
    return manifest


def dataset_rows(exports: Path, name: str) -> int:
    conn = duckdb.connect()
    try:
        return conn.execute(
            "select count(*) from read_parquet(?, hive_partitioning = false)", [f"{exports / name}/**/*.parquet"]
        ).fetchone()[0]
    finally:
        conn.close()


# --- the published datasets ---------------------------------------------------------------


def test_publish_writes_every_dataset_with_bi_types(fixture_env: dict[str, Path]) -> None:
    result = publish(fixture_env)
    exports = fixture_env["exports"]
    manifest = assert_manifest_consistent(exports)
    assert manifest["version_id"] == result.version_id and manifest["run_id"] == "test-run"
    assert list(manifest["datasets"]) == [spec.name for spec in DATASETS]
    for spec in DATASETS:
        entry = manifest["datasets"][spec.name]
        assert entry["rows"] == warehouse_rows(fixture_env, spec.model) == dataset_rows(exports, spec.name)
        assert (exports / spec.name).is_symlink()
        for f in entry["files"]:
            schema = pq.read_schema(exports / f["path"])
            assert {str(field.type) for field in schema} <= BI_ARROW_TYPES, (spec.name, schema)
            assert f["path"].startswith(f"_versions/{result.version_id}/{spec.name}/")
            assert result.version_id in Path(f["path"]).name  # a reader never mixes two versions' files
            meta = pq.read_metadata(exports / f["path"])
            assert meta.num_row_groups == 0 or max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 500_000
            for i in range(meta.num_row_groups):
                for j in range(meta.num_columns):
                    assert meta.row_group(i).column(j).compression == "SNAPPY"
    types = {c["name"]: c["type"] for c in manifest["datasets"]["votes"]["columns"]}
    assert types["submitted_at_utc"] == "TIMESTAMP WITH TIME ZONE"  # naive UTC timestamp published with its zone
    assert types["years_experience"] == "INTEGER"  # UTINYINT: no unsigned types
    assert types["submitted_on"] == "DATE"
    headline = {c["name"]: c["type"] for c in manifest["datasets"]["headline_figures"]["columns"]}
    assert headline["library_experience_years"] == "BIGINT"  # HUGEINT sum
    themes = {c["name"]: c["type"] for c in manifest["datasets"]["theme_rankings"]["columns"]}
    assert themes["vote_share"] == "DOUBLE" and themes["workshop_points"] == "DOUBLE"  # FLOAT, DECIMAL
    assert themes["suppressed"] == "BOOLEAN"
    workshops = {c["name"]: c["type"] for c in manifest["datasets"]["workshops"]["columns"]}
    assert workshops["workshop_kind_code"] == "VARCHAR"  # ENUM
    # the big facts are split into hive partitions, the rest are single files
    assert manifest["datasets"]["votes"]["partitioning"]["key"] == "region_code_partition"
    assert manifest["datasets"]["vote_choices"]["partitioning"]["source_column"] == "question_code"
    assert manifest["datasets"]["country"]["partitioning"] is None
    assert len(manifest["datasets"]["votes"]["files"]) == 6
    # the load ledger summary
    assert manifest["load_ledger"]["votes"] == {
        "files": 2, "files_loaded": 2, "files_rejected": 0, "records_read": 2005, "bytes": 1500,
        "last_file_seen_at": "2017-10-03T08:00:00Z",
    }
    assert manifest["load_ledger"]["workshops"]["records_read"] == 1300


def test_timestamps_keep_their_utc_instant(fixture_env: dict[str, Path]) -> None:
    publish(fixture_env)
    conn = duckdb.connect(str(fixture_env["warehouse"]), read_only=True)
    try:
        conn.execute("set TimeZone = 'America/New_York'")  # a reader's zone must not shift the instants
        mismatches = conn.execute(
            """
            select count(*)
            from marts.fct_votes w
            join read_parquet(?, hive_partitioning = false) e using (vote_key)
            where epoch_us(e.submitted_at_utc) <> epoch_us(w.submitted_at_utc)
            """,
            [f"{fixture_env['exports']}/votes/**/*.parquet"],
        ).fetchone()[0]
    finally:
        conn.close()
    assert mismatches == 0
    first = pq.read_table(fixture_env["exports"] / "votes").column("submitted_at_utc").type
    assert first == pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize("dataset", [spec.name for spec in DATASETS])
def test_every_reader_gets_the_same_rows_and_types(published: dict[str, Path], dataset: str) -> None:
    exports = published["exports"]
    entry = read_manifest(exports / "manifest.json")["datasets"][dataset]
    tables = read_every_way(exports, dataset, entry)
    expected = [(c["name"], c["arrow_type"]) for c in entry["columns"]]
    for reader, table in tables.items():
        assert [(f.name, str(f.type)) for f in table.schema] == expected, reader
        assert table.num_rows == entry["rows"], reader
        assert table.equals(tables["duckdb"]), f"{reader} rows differ from duckdb's"
    # pandas' default (NumPy) backend reads the same folder too
    assert len(pd.read_parquet(exports / dataset)) == entry["rows"]


def test_data_dictionary_and_manifest_use_the_dbt_docs(published: dict[str, Path]) -> None:
    exports = published["exports"]
    manifest = read_manifest(exports / "manifest.json")
    dictionary = (exports / "DATA_DICTIONARY.md").read_text(encoding="utf-8")
    votes = manifest["datasets"]["votes"]
    assert votes["grain"] == "One vote (grain from dbt meta)."  # dbt meta wins over the fallback
    assert votes["description"] == "Fixture docs of fct_votes: a mart."
    assert {c["name"]: c["description"] for c in votes["columns"]}["vote_key"] == "vote_key of fct_votes | documented."
    for name, entry in manifest["datasets"].items():
        assert f"### {name}" in dictionary
        for column in entry["columns"]:
            assert f"| `{column['name']}` | {column['type']} |" in dictionary
    assert "vote_key of fct_votes \\| documented." in dictionary  # pipes escaped in table cells
    assert "| `city` | VARCHAR | _(undocumented)_ |" in dictionary
    assert manifest["dbt"]["project_name"] == "global_vision_warehouse"


# --- bi.duckdb ----------------------------------------------------------------------------------


BI_PROBE = """
import duckdb, json, sys
conn = duckdb.connect(sys.argv[1], read_only=True)
views = [r[0] for r in conn.execute("select view_name from duckdb_views() where not internal order by 1").fetchall()]
counts = {v: conn.execute(f'select count(*) from "{v}"').fetchone()[0] for v in views}
comment = conn.execute("select comment from duckdb_columns() where table_name = 'votes' and column_name = 'vote_key'").fetchone()[0]
print(json.dumps({"counts": counts, "comment": comment}))
"""


def test_bi_duckdb_opens_read_only_from_another_cwd(fixture_env: dict[str, Path], tmp_path: Path) -> None:
    publish(fixture_env)
    exports = fixture_env["exports"]
    bi = exports / "bi.duckdb"
    header = bi.read_bytes()[:20]
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 64  # storage of DuckDB 1.0/1.1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = subprocess.run([sys.executable, "-c", BI_PROBE, str(bi)], cwd=elsewhere,
                           capture_output=True, text=True, check=True)
    result = json.loads(probe.stdout)
    manifest = read_manifest(exports / "manifest.json")
    assert result["counts"] == {name: d["rows"] for name, d in sorted(manifest["datasets"].items())}
    assert result["comment"] == "vote_key of fct_votes | documented."
    assert not list(exports.glob("bi.duckdb.wal"))

    # A BI tool keeps the database open read-only while a new version is published:
    # its views follow the new version, and the publisher never waits for it.
    conn = duckdb.connect(str(bi), read_only=True)
    try:
        before = conn.execute("select count(*) from votes").fetchone()[0]
        writer = duckdb.connect(str(fixture_env["warehouse"]))
        writer.execute("delete from marts.fct_votes where region_code = 'europe'")
        writer.close()
        publish(fixture_env, run_id="second")
        after = conn.execute("select count(*) from votes").fetchone()[0]
    finally:
        conn.close()
    assert after == warehouse_rows(fixture_env, "fct_votes") < before


# --- versions, atomicity, crashes -------------------------------------------------------------


def test_versions_are_pruned_to_the_number_kept(fixture_env: dict[str, Path]) -> None:
    exports = fixture_env["exports"]
    ids = []
    for i in range(4):
        ids.append(publish(fixture_env, run_id=f"run{i}", versions_kept=2).version_id)
        remove_one_vote(fixture_env)  # new data: the next publish is a new version
    assert sorted(p.name for p in (exports / "_versions").iterdir()) == ids[-2:]
    assert os.readlink(exports / "_current") == f"_versions/{ids[-1]}"
    manifest = assert_manifest_consistent(exports)
    assert manifest["version_id"] == ids[-1]
    assert manifest["schema_changes"] == {"previous_version_id": ids[-2], "datasets": {}}
    assert not list((exports / "_trash").iterdir())
    # the previous version stays complete and readable under _versions
    previous = read_manifest(exports / "_versions" / ids[-2] / "manifest.json")
    for entry in previous["datasets"].values():
        for f in entry["files"]:
            assert hashlib.sha256((exports / f["path"]).read_bytes()).hexdigest() == f["sha256"]


def remove_one_vote(env: dict[str, Path]) -> None:
    writer = duckdb.connect(str(env["warehouse"]))
    try:
        writer.execute("delete from marts.fct_votes where vote_key = (select min(vote_key) from marts.fct_votes)")
    finally:
        writer.close()


def exports_files_state(exports: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(exports).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in exports.rglob("*") if p.is_file() and not p.is_symlink()}


def test_a_rerun_without_new_data_writes_nothing(fixture_env: dict[str, Path]) -> None:
    exports = fixture_env["exports"]
    first = publish(fixture_env, run_id="first")
    assert not first.unchanged
    before = exports_files_state(exports)
    again = publish(fixture_env, run_id="again")
    assert again.unchanged and again.version_id == first.version_id
    assert exports_files_state(exports) == before  # not one file rewritten
    assert read_manifest(exports / "manifest.json")["run_id"] == "first"

    remove_one_vote(fixture_env)
    changed = publish(fixture_env, run_id="changed")
    assert not changed.unchanged and changed.version_id != first.version_id
    assert changed.manifest["datasets"]["votes"]["rows"] == first.manifest["datasets"]["votes"]["rows"] - 1

    # other options are other content; a damaged current version is published again
    assert not publish(fixture_env, run_id="zstd", compression="zstd").unchanged
    (exports / "bi.duckdb").unlink()
    repaired = publish(fixture_env, run_id="repaired", compression="zstd")
    assert not repaired.unchanged and (exports / "bi.duckdb").is_file()


def test_a_rerun_on_an_untouched_warehouse_file_reads_no_mart(fixture_env: dict[str, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap check first: an untouched warehouse file holds what was published from it.
    A rewritten file is scanned (content fingerprint); only new content is published."""
    from orchestration.export import publish as publish_module

    scans: list[int] = []
    real_scan = publish_module._scan_marts

    def counting_scan(*args, **kwargs):
        scans.append(1)
        return real_scan(*args, **kwargs)

    monkeypatch.setattr(publish_module, "_scan_marts", counting_scan)
    exports = fixture_env["exports"]
    first = publish(fixture_env, run_id="first")
    assert len(scans) == 1 and first.manifest["source_state"]
    before = exports_files_state(exports)

    assert publish(fixture_env, run_id="again").unchanged
    assert len(scans) == 1, "an untouched warehouse file must not be scanned"

    # the file is rewritten (a table created and dropped), the marts are not: scanned, still unchanged
    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute("create table raw.scratch as select 1 as x")
    writer.execute("drop table raw.scratch")
    writer.close()
    again = publish(fixture_env, run_id="rewritten")
    assert again.unchanged and again.version_id == first.version_id and len(scans) == 2
    assert exports_files_state(exports) == before

    remove_one_vote(fixture_env)
    changed = publish(fixture_env, run_id="changed")
    assert not changed.unchanged and len(scans) == 3
    assert changed.manifest["source_state"] != first.manifest["source_state"]


def test_every_file_is_sorted_by_all_its_columns(tmp_path: Path) -> None:
    """One sorted statement per file: partitioned datasets too. (DuckDB's partitioned writer
    interleaves its threads' sorted runs: at 20,000 votes, every partition file would be.)"""
    env = {"data_dir": tmp_path, "warehouse": tmp_path / "warehouse.duckdb", "manifest": tmp_path / "dbt_manifest.json",
           "exports": tmp_path / "exports"}
    build_fixture_warehouse(env["warehouse"], n_votes=20_000)
    build_fixture_manifest(env["warehouse"], env["manifest"])
    publish(env)
    exports = env["exports"]
    manifest = read_manifest(exports / "manifest.json")
    partitioned = [n for n, d in manifest["datasets"].items() if d["partitioning"]]
    assert {"votes", "vote_choices", "participation"} <= set(partitioned)
    for name, entry in manifest["datasets"].items():
        for f in entry["files"]:
            table = pq.read_table(exports / f["path"])
            # ascending, nulls last: DuckDB's order of the export's "order by"
            order = pc.sort_indices(table, sort_keys=[(c, "ascending", "at_end") for c in table.column_names])
            assert table.take(order).equals(table), f"{name}: {f['path']} is not sorted"


def test_partition_folders_are_named_as_duckdb_and_readers_expect(fixture_env: dict[str, Path], tmp_path: Path) -> None:
    """Special characters and nulls in the partition column: folders percent-encoded like
    DuckDB's own hive writer, nulls in ``__null__``, every row in its partition."""
    from orchestration.export.publish import partition_folder

    odd = ["north/america & co", "50% = half", "é", "__null__"]
    probe = duckdb.connect()
    try:
        probe.execute("create table t as select unnest($v) as \"k ey\", 1 as x", {"v": odd})
        probe.execute(f"copy t to '{tmp_path / 'hive'}' (format parquet, partition_by (\"k ey\"))")
    finally:
        probe.close()
    assert sorted(p.name for p in (tmp_path / "hive").iterdir()) == sorted(partition_folder("k ey", v) for v in odd)

    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute("update marts.fct_votes set region_code = 'north/america & co' where region_code = 'north_america'")
    writer.execute("update marts.fct_votes set region_code = null where region_code = 'africa'")
    writer.close()
    result = publish(fixture_env)
    votes = result.manifest["datasets"]["votes"]
    assert votes["partitioning"]["values"] == sorted(
        [partition_folder("x", v).split("=", 1)[1] for v in ("__null__", "asia_oceania", "europe",
                                                              "latin_america_caribbean", "middle_east_north_africa",
                                                              "north/america & co")])
    conn = duckdb.connect(str(fixture_env["warehouse"]), read_only=True)
    try:
        misplaced, rows = conn.execute(
            """
            select count(*) filter (where region_code_partition <> coalesce(region_code, '__null__')), count(*)
            from read_parquet(?, hive_partitioning = true)
            """,
            [f"{fixture_env['exports']}/votes/**/*.parquet"],
        ).fetchone()
    finally:
        conn.close()
    assert misplaced == 0 and rows == votes["rows"] == warehouse_rows(fixture_env, "fct_votes")
    # pyarrow decodes the folder names back to the values
    keys = set(ds.dataset(fixture_env["exports"] / "votes", format="parquet", partitioning="hive")
               .to_table(columns=["region_code_partition"]).column(0).to_pylist())
    assert {"north/america & co", "__null__"} <= keys


def test_options_from_settings_carry_the_duckdb_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestration.settings import load_settings

    monkeypatch.setenv("GVW_DUCKDB_MEMORY_LIMIT", "300MB")
    settings = load_settings()
    options = ExportOptions.from_settings(settings)
    assert options.duckdb_config == settings.duckdb_config()
    assert options.duckdb_config["memory_limit"] == "300MB"


def _run_export_subprocess(env: dict[str, Path], crash_at: str | None) -> subprocess.CompletedProcess:
    child_env = {**os.environ, "GVW_DATA_DIR": str(env["data_dir"])}
    child_env.pop("GVW_TEST_CRASH_AT", None)
    if crash_at:
        child_env["GVW_TEST_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "orchestration.export", "--manifest", str(env["manifest"]),
         "--partition-min-rows", str(SMALL_PARTITION_THRESHOLD), "--run-id", f"crash-{crash_at}"],
        cwd=PROJECT_ROOT, env=child_env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_killed_export_leaves_the_previous_version_intact(fixture_env: dict[str, Path], crash_at: str) -> None:
    exports = fixture_env["exports"]
    first = publish(fixture_env, run_id="first")
    old_rows = {name: d["rows"] for name, d in first.manifest["datasets"].items()}
    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute("delete from marts.fct_votes where region_code = 'africa'")
    writer.execute("delete from marts.dim_country where country_code = 'HK'")
    writer.close()

    killed = _run_export_subprocess(fixture_env, crash_at)
    assert killed.returncode == -9, killed.stderr  # SIGKILL, at the chosen point

    manifest = assert_manifest_consistent(exports)
    flipped = crash_at in ("after_swap", "after_manifest")
    visible_rows = {name: dataset_rows(exports, name) for name in old_rows}
    if flipped:
        # the new version was complete before the flip: readers see all of it
        assert visible_rows["votes"] == warehouse_rows(fixture_env, "fct_votes") < old_rows["votes"]
        assert visible_rows["country"] == old_rows["country"] - 1
    else:
        assert visible_rows == old_rows
        assert os.readlink(exports / "_current") == f"_versions/{first.version_id}"
    assert (manifest["version_id"] == first.version_id) == (crash_at != "after_manifest")
    # the previous version is intact whatever happened
    assert (exports / "_versions" / first.version_id / "manifest.json").is_file()

    # the next publish cleans up after the crash and publishes what the crash did not
    again = _run_export_subprocess(fixture_env, None)
    assert again.returncode == 0, again.stderr
    # a version that was flipped in is complete: the rerun finds nothing new to publish
    assert again.stdout.startswith("unchanged" if flipped else "published"), again.stdout
    manifest = assert_manifest_consistent(exports)
    assert manifest["version_id"] != first.version_id
    assert os.readlink(exports / "_current") == f"_versions/{manifest['version_id']}"
    assert not list((exports / "_staging").iterdir())
    assert not list(exports.glob(".*.tmp-*"))
    versions = sorted(p.name for p in (exports / "_versions").iterdir())
    # the first version and the new one; a staged or unpublished version was discarded
    assert versions == [first.version_id, manifest["version_id"]]
    assert {name: dataset_rows(exports, name) for name in old_rows} == {n: d["rows"] for n, d in manifest["datasets"].items()}


def test_recovery_restores_top_level_files_after_a_crash_between_flip_and_manifest(fixture_env: dict[str, Path]) -> None:
    from orchestration.export import recover

    exports = fixture_env["exports"]
    publish(fixture_env, run_id="first")
    remove_one_vote(fixture_env)
    assert _run_export_subprocess(fixture_env, "after_swap").returncode == -9
    current = os.readlink(exports / "_current").split("/")[-1]
    assert read_manifest(exports / "manifest.json")["version_id"] != current
    done = recover(exports)
    assert any("restored" in line for line in done)
    assert read_manifest(exports / "manifest.json")["version_id"] == current
    assert f"Version `{current}`" in (exports / "DATA_DICTIONARY.md").read_text(encoding="utf-8")


def test_a_lost_current_link_is_restored_from_the_manifest(fixture_env: dict[str, Path]) -> None:
    from orchestration.export import recover

    exports = fixture_env["exports"]
    first = publish(fixture_env)
    (exports / "_current").unlink()
    assert "re-linked _current to " + first.version_id in recover(exports)
    assert dataset_rows(exports, "votes") == first.manifest["datasets"]["votes"]["rows"]
    assert [p.name for p in (exports / "_versions").iterdir()] == [first.version_id]


def test_the_callers_connection_keeps_its_time_zone(fixture_env: dict[str, Path]) -> None:
    conn = duckdb.connect(str(fixture_env["warehouse"]), read_only=True)
    try:
        conn.execute("set TimeZone = 'Asia/Tokyo'")
        publish_exports(conn, ExportOptions(exports_dir=fixture_env["exports"]), DbtDocs.load(fixture_env["manifest"]),
                        run_id="tz")
        assert conn.execute("select current_setting('TimeZone')").fetchone()[0] == "Asia/Tokyo"
    finally:
        conn.close()


def test_a_failed_check_publishes_nothing(fixture_env: dict[str, Path]) -> None:
    exports = fixture_env["exports"]
    first = publish(fixture_env)
    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute("alter table marts.fct_votes add column gap interval")
    writer.close()
    with pytest.raises(ExportError, match="votes .*INTERVAL"):
        publish(fixture_env, run_id="second")
    assert read_manifest(exports / "manifest.json")["version_id"] == first.version_id
    assert [p.name for p in (exports / "_versions").iterdir()] == [first.version_id]


# --- privacy -----------------------------------------------------------------------------------


def test_small_cells_are_suppressed_outside_the_global_scope(fixture_env: dict[str, Path]) -> None:
    publish(fixture_env, min_cell=5)
    exports = fixture_env["exports"]
    conn = duckdb.connect(str(fixture_env["warehouse"]), read_only=True)
    try:
        rows = conn.execute(
            """
            select e.scope_type, e.scope_value, e.option_code, w.votes as true_votes,
                   e.votes, e.vote_share, e.vote_rank, e.suppressed, e.workshop_points, w.workshop_points as true_points,
                   abs(e.vote_share - w.vote_share) < 1e-6 as same_share, e.vote_rank = w.vote_rank as same_rank
            from read_parquet(?, hive_partitioning = false) e
            join marts.fct_theme_rankings w using (scope_type, scope_value, question_code, option_code)
            """,
            [f"{exports}/theme_rankings/**/*.parquet"],
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == warehouse_rows(fixture_env, "fct_theme_rankings")
    small_outside = [r for r in rows if r[0] != "global" and r[3] < 5]
    assert small_outside, "the fixture must have small cells outside the global scope"
    assert all(r[4] is None and r[5] is None and r[6] is None and r[7] is True for r in small_outside)
    # north_america has 3 votes: every one of its cells is suppressed
    assert {r[7] for r in rows if r[1] == "north_america"} == {True}
    shown = [r for r in rows if not (r[0] != "global" and r[3] < 5)]
    assert all(r[4] == r[3] and r[10] and r[11] and r[7] is False for r in shown)
    # global rows are never suppressed, even with a count below the minimum (Q6-10 has 2 votes)
    q6_10 = [r for r in rows if r[0] == "global" and r[2] == "Q6-10"]
    assert q6_10 == [q6_10[0]] and q6_10[0][3] == 2 and q6_10[0][4] == 2 and q6_10[0][7] is False
    # workshop points are not counts of people: never suppressed
    assert all(r[8] == r[9] for r in rows)
    manifest = read_manifest(exports / "manifest.json")
    assert manifest["datasets"]["theme_rankings"]["suppression"]["rows_suppressed"] == len(small_outside)

    # the threshold is GVW_MIN_CELL: with 1, only zero cells outside the global scope go
    publish(fixture_env, min_cell=1, run_id="min1")
    suppressed = read_manifest(exports / "manifest.json")["datasets"]["theme_rankings"]["suppression"]["rows_suppressed"]
    assert suppressed == sum(1 for r in rows if r[0] != "global" and r[3] < 1) < len(small_outside)


def test_no_identifier_column_is_published(published: dict[str, Path]) -> None:
    manifest = read_manifest(published["exports"] / "manifest.json")
    names = [c["name"] for d in manifest["datasets"].values() for c in d["columns"]]
    assert names and not [n for n in names if re.search(FORBIDDEN_COLUMN_PATTERN, n, re.IGNORECASE)]
    for entry in manifest["datasets"].values():
        for f in entry["files"]:
            assert not [n for n in pq.read_schema(published["exports"] / f["path"]).names
                        if re.search(FORBIDDEN_COLUMN_PATTERN, n, re.IGNORECASE)]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("alter table marts.fct_votes add column respondent_email varchar", "identifier column.*respondent_email"),
        ("alter table marts.fct_votes add column response_id varchar", "identifier column.*response_id"),
        ("alter table marts.fct_participation add column participant_ref varchar", "identifier column.*participant_ref"),
        ("update marts.fct_workshops set workshop_title = 'Contact: Jane.Doe@example.org' where workshop_id = 'W003'",
         "e-mail addresses in column.*workshop_title"),
        ("alter table marts.fct_theme_rankings rename column votes to vote_count", "suppression needs column.*votes"),
    ],
)
def test_identifiers_are_refused(fixture_env: dict[str, Path], sql: str, message: str) -> None:
    first = publish(fixture_env)
    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute(sql)
    writer.close()
    with pytest.raises(PrivacyError, match=message):
        publish(fixture_env, run_id="leaky")
    exports = fixture_env["exports"]
    assert read_manifest(exports / "manifest.json")["version_id"] == first.version_id
    assert os.readlink(exports / "_current") == f"_versions/{first.version_id}"
    assert not list((exports / "_staging").iterdir())  # a refused version leaves nothing behind


# --- schema contract ---------------------------------------------------------------------------


def test_schema_changes_tell_breaking_from_additive() -> None:
    old = [{"name": "a", "type": "BIGINT"}, {"name": "b", "type": "VARCHAR"}, {"name": "c", "type": "DATE"}]
    new = [{"name": "a", "type": "INTEGER"}, {"name": "c", "type": "DATE"}, {"name": "d", "type": "DOUBLE"}]
    changes = schema_changes(old, new)
    assert changes.breaking == ["column 'b' removed or renamed", "column 'a' changed type BIGINT -> INTEGER"]
    assert changes.additive == ["column 'd' added (DOUBLE)"]
    assert not changes.reordered
    assert not schema_changes(old, old).any


def test_a_renamed_mart_column_is_recorded_as_breaking(fixture_env: dict[str, Path]) -> None:
    first = publish(fixture_env)
    writer = duckdb.connect(str(fixture_env["warehouse"]))
    writer.execute("alter table marts.dim_region rename column region_name_en to region_name")
    writer.close()
    second = publish(fixture_env, run_id="second")
    changes = second.manifest["schema_changes"]
    assert changes["previous_version_id"] == first.version_id
    assert changes["datasets"] == {"region": {
        "breaking": ["column 'region_name_en' removed or renamed"],
        "additive": ["column 'region_name' added (VARCHAR)"],
        "reordered": False,
    }}


# --- Dagster ------------------------------------------------------------------------------------


def test_dagster_multi_asset_publishes_one_version_with_metadata(fixture_env: dict[str, Path]) -> None:
    from orchestration.assets.export import EXPORTS_GROUP, build_export_assets

    mart_keys = {spec.model: dg.AssetKey(["marts", spec.model]) for spec in DATASETS}
    docs = DbtDocs.load(fixture_env["manifest"])
    assets = build_export_assets(mart_keys, docs, partition_min_rows=SMALL_PARTITION_THRESHOLD)
    (export_def,) = assets
    assert {k.path[0] for k in export_def.keys} == {"exports"}
    assert {k.path[1] for k in export_def.keys} == {spec.name for spec in DATASETS}
    for spec in DATASETS:
        key = dg.AssetKey(["exports", spec.name])
        assert export_def.specs_by_key[key].group_name == EXPORTS_GROUP
        assert {dep.asset_key for dep in export_def.specs_by_key[key].deps} == {mart_keys[spec.model]}

    result = dg.materialize(assets, resources={"warehouse": WarehouseResource(data_dir=str(fixture_env["data_dir"]))})
    assert result.success
    materializations = result.asset_materializations_for_node(export_def.node_def.name)
    assert len(materializations) == len(DATASETS)
    manifest = read_manifest(fixture_env["exports"] / "manifest.json")
    assert manifest["run_id"] == result.run_id
    for event in materializations:
        name = event.asset_key.path[1]
        meta = event.metadata
        assert meta["dagster/row_count"].value == manifest["datasets"][name]["rows"]
        assert meta["version"].value == manifest["version_id"]
        assert meta["bytes"].value == manifest["datasets"][name]["bytes"]
        assert meta["path"].value == str(fixture_env["exports"] / name)
        columns = meta["dagster/column_schema"].schema.columns
        assert [c.name for c in columns] == [c["name"] for c in manifest["datasets"][name]["columns"]]


def test_export_assets_depend_on_the_dbt_marts() -> None:
    """The assets of the code location: one multi-asset after the dbt mart assets."""
    from dagster_dbt import get_asset_key_for_model

    from orchestration.assets.export import EXPORTS_GROUP, export_assets
    from orchestration.assets.warehouse import dbt_warehouse_assets

    (export_def,) = export_assets
    assert not export_def.can_subset
    for spec in DATASETS:
        asset_spec = export_def.specs_by_key[dg.AssetKey([EXPORTS_GROUP, spec.name])]
        assert {dep.asset_key for dep in asset_spec.deps} == {get_asset_key_for_model([dbt_warehouse_assets], spec.model)}
        assert asset_spec.description and spec.model in asset_spec.description


def test_a_failing_blocking_check_on_a_mart_skips_the_export(fixture_env: dict[str, Path]) -> None:
    """The quality checks on the marts are blocking: when one fails, Dagster skips the export
    and the previous version stays published."""
    from orchestration.assets.export import build_export_assets

    first = publish(fixture_env, run_id="first")
    mart_keys = {spec.model: dg.AssetKey(["marts", spec.model]) for spec in DATASETS}
    assets = build_export_assets(mart_keys, DbtDocs.load(fixture_env["manifest"]))
    resources = {"warehouse": WarehouseResource(data_dir=str(fixture_env["data_dir"]))}

    def run_with_check(passed: bool) -> dg.ExecuteInProcessResult:
        @dg.asset(key=["marts", "fct_votes"])
        def fct_votes() -> None:
            """Stands for the dbt model: the table is already in the fixture warehouse."""

        @dg.asset_check(asset=fct_votes, blocking=True)
        def votes_are_valid() -> dg.AssetCheckResult:
            return dg.AssetCheckResult(passed=passed)

        return dg.materialize([fct_votes, votes_are_valid, *assets], resources=resources, raise_on_error=False)

    failed = run_with_check(passed=False)
    exported = [e for e in failed.get_asset_materialization_events() if e.asset_key.path[0] == "exports"]
    assert not exported
    assert read_manifest(fixture_env["exports"] / "manifest.json")["version_id"] == first.version_id

    remove_one_vote(fixture_env)  # new data to publish
    passed = run_with_check(passed=True)
    assert passed.success
    assert read_manifest(fixture_env["exports"] / "manifest.json")["run_id"] == passed.run_id
