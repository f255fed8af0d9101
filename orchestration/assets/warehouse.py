"""The dbt warehouse as Dagster assets (group ``warehouse``).

Every dbt seed and model is an asset; the dbt sources are the raw tables that the ingest
assets write (their ``meta.dagster.asset_key`` is ``["raw", <table>]``), so the graph runs
ingest -> seeds/staging -> intermediate -> marts. dbt tests become asset checks of the
model they test. ``dbt build`` runs each model's tests right after it and skips everything
downstream of a failing error-severity test; the step then fails, so Dagster assets
downstream of the warehouse do not run either.

Nothing here parses the dbt project: the manifest is prepared at setup (see
``orchestration/dbt_project.py``).
"""

# No `from __future__ import annotations`: Dagster inspects the real type of `context`.
import importlib
import importlib.metadata
import os
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
from dagster import AssetExecutionContext, AssetMaterialization, MetadataValue, Output
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from packaging.version import Version

from orchestration.dbt_project import dbt_project
from orchestration.resources import PIPELINE_OWNERS, WAREHOUSE_POOL, WarehouseResource

WAREHOUSE_GROUP = "warehouse"
# Dagster's standard metadata key for a table's row count.
ROW_COUNT_KEY = "dagster/row_count"
# dbt artifacts (run_results.json, logs, compiled SQL) of the latest runs, kept under
# <data_dir>/dbt_runs/ rather than in the project's target/ (which would grow forever).
DBT_RUNS_DIR = "dbt_runs"
DBT_RUNS_KEPT = 10
# dbt's saved parse state (see _reuse_parse_state).
PARSE_STATE_FILE = "partial_parse.msgpack"
GX_MODULE = "great_expectations"

__all__ = ["WAREHOUSE_GROUP", "build_dbt_resource", "dbt_project", "dbt_warehouse_assets"]


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """dbt resources land in the ``warehouse`` group. Keys stay dagster-dbt's defaults:
    schema and name (``marts/fct_votes``, ``reference/countries``, ``staging/stg_raw__votes``);
    sources use their ``meta.dagster.asset_key`` (``raw/votes``). Look a model's key up
    with ``dagster_dbt.get_asset_key_for_model([dbt_warehouse_assets], "fct_votes")``."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return WAREHOUSE_GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return super().get_owners(dbt_resource_props) or PIPELINE_OWNERS


def _dbt_executable() -> str:
    """The dbt of this interpreter's environment (the venv's bin may not be on PATH)."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.exists():
        return str(beside)
    return shutil.which("dbt") or "dbt"


class WarehouseDbtCliResource(DbtCliResource):
    """dagster-dbt's ``DbtCliResource`` without two costs it pays before every dbt command
    (7.4 s of a 29 s dbt step at scale 1, profiled): it runs ``dbt --version`` in a
    subprocess to learn dbt's version (a whole dbt start-up), and it builds a dbt adapter in
    this process (importing dbt, loading the profile and project) that only its
    ``fetch_row_counts()`` and ``fetch_column_metadata()`` use. This project reads row
    counts itself (``_with_row_counts``), and the dbt that runs is the dbt-core of this
    environment, so its version comes from the package metadata.

    Both are private hooks of dagster-dbt (``uv.lock`` pins the version);
    tests/test_dbt_dagster.py fails if an upgrade renames them."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None  # dagster-dbt accepts no adapter (it is optional there)


def build_dbt_resource() -> DbtCliResource:
    """The resource registered under the key ``dbt``. Reads no environment variable: the
    warehouse path reaches dbt through ``GVW_DATA_DIR`` when the assets run."""
    return WarehouseDbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())


def _require_manifest() -> Path:
    if not dbt_project.manifest_path.exists():
        raise FileNotFoundError(
            f"dbt manifest not found at {dbt_project.manifest_path}: prepare it with "
            "`dagster-dbt project prepare-and-package --file orchestration/dbt_project.py` "
            "(part of `make setup`)"
        )
    return dbt_project.manifest_path


@dbt_assets(
    manifest=_require_manifest(),
    pool=WAREHOUSE_POOL,
    project=dbt_project,
    dagster_dbt_translator=WarehouseDbtTranslator(
        settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
    ),
)
def dbt_warehouse_assets(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
) -> Iterator[Any]:
    """``dbt build`` of the selected seeds, models and their tests, into the warehouse of
    the ``warehouse`` resource; row counts of the built tables are attached as metadata."""
    settings = warehouse.settings()
    settings.ensure_dirs()
    # dbt runs as a subprocess that inherits this environment: profiles.yml resolves the
    # DuckDB file from GVW_DATA_DIR, so point it at this resource's (absolute) directory.
    os.environ["GVW_DATA_DIR"] = str(settings.data_dir)
    # ...and give its DuckDB the pipeline's memory limit and spill directory (profiles.yml).
    os.environ["GVW_DUCKDB_MEMORY_LIMIT"] = settings.duckdb_memory_limit
    os.environ["GVW_DUCKDB_TEMP_DIR"] = str(settings.duckdb_temp_dir / "dbt")
    (settings.duckdb_temp_dir / "dbt").mkdir(parents=True, exist_ok=True)
    runs_dir = settings.data_dir / DBT_RUNS_DIR
    target_path = _new_run_target_path(runs_dir, context.run.run_id)
    _reuse_parse_state(runs_dir, target_path)
    invocation = dbt.cli(["build"], context=context, raise_on_error=False, target_path=target_path)
    _preload_quality_library(context)
    # DuckDB lets one process write the file: collect the events until dbt has exited,
    # then count rows over one short read-only connection. (dagster-dbt's own
    # fetch_row_counts() leaves its read-only connection open in this process, which
    # would block every later writer, e.g. the next ingestion run.)
    events = list(invocation.stream())
    _keep_parse_state(runs_dir, target_path)
    yield from _with_row_counts(context, events, invocation.manifest, warehouse)
    error = invocation.get_error()
    if error is not None:
        raise error


def _preload_quality_library(context: AssetExecutionContext) -> None:
    """Import Great Expectations in a background thread while dbt runs.

    Importing it takes seconds of CPU, and the quality checks that need it run right after
    dbt; meanwhile this process only waits for dbt's output, so the import uses the idle core.
    Only when the job has Great Expectations checks; a failed import is left to the checks.
    """
    if GX_MODULE in sys.modules:
        return
    if not any(k.name.startswith("gx_") for k in context.job_def.asset_layer.asset_graph.asset_check_keys):
        return

    def load() -> None:
        try:
            importlib.import_module(GX_MODULE)
        except Exception:  # noqa: BLE001 - the quality step imports it again and reports the error
            pass

    threading.Thread(target=load, name="preload-great-expectations", daemon=True).start()


def _reuse_parse_state(runs_dir: Path, target_path: Path) -> None:
    """Start dbt from the parse state of the previous run on this data directory.

    dbt reuses its saved parse state (partial parsing: only changed files are parsed again)
    only when the profile is the same as when it was saved, and the profile names this data
    directory's warehouse: the state prepared at setup serves the default data directory
    only. dagster-dbt copies that one into the target path unless a state is already there.
    """
    kept = runs_dir / PARSE_STATE_FILE
    if kept.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target_path / PARSE_STATE_FILE)


def _keep_parse_state(runs_dir: Path, target_path: Path) -> None:
    """Keep this run's parse state for the next run (replaced atomically)."""
    state = target_path / PARSE_STATE_FILE
    if state.exists():
        tmp = runs_dir / f".{PARSE_STATE_FILE}.{uuid.uuid4().hex[:8]}"
        shutil.copyfile(state, tmp)
        os.replace(tmp, runs_dir / PARSE_STATE_FILE)


def _new_run_target_path(runs_dir: Path, run_id: str) -> Path:
    """A fresh artifacts folder for this dbt invocation; older ones beyond the newest
    ``DBT_RUNS_KEPT`` are removed."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    previous = sorted((p for p in runs_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in previous[: max(0, len(previous) - (DBT_RUNS_KEPT - 1))]:
        shutil.rmtree(stale, ignore_errors=True)
    return runs_dir / f"{run_id[:8]}-{uuid.uuid4().hex[:8]}"


def _with_row_counts(
    context: AssetExecutionContext, events: list[Any], manifest: Mapping[str, Any], warehouse: WarehouseResource
) -> Iterator[Any]:
    """The events, with ``dagster/row_count`` added to those of tables (seeds and table
    models; views are not counted, as that would run their query). Counts are metadata
    only: if the warehouse cannot be read now, the events go out without them."""
    relations: dict[int, str] = {}
    for index, event in enumerate(events):
        if not isinstance(event, (Output, AssetMaterialization)) or "unique_id" not in event.metadata:
            continue
        node = manifest["nodes"].get(event.metadata["unique_id"].value)
        if node and node["config"].get("materialized") in ("table", "seed", "incremental"):
            relations[index] = node["relation_name"]  # quoted by dbt
    counts: dict[int, int] = {}
    if relations:
        try:
            with warehouse.connect(read_only=True) as conn:
                for index, relation in relations.items():
                    counts[index] = conn.execute(f"select count(*) from {relation}").fetchone()[0]
        except duckdb.Error as exc:  # e.g. another process took the write lock meanwhile
            context.log.warning(f"row counts not attached: {exc}")
            counts = {}
    for index, event in enumerate(events):
        if index in counts:
            event = event.with_metadata({**event.metadata, ROW_COUNT_KEY: MetadataValue.int(counts[index])})
        yield event
