"""Run a versioned GX checkpoint on a frame built in DuckDB; results and Data Docs go to
``$GVW_DATA_DIR/quality`` (never into the repository).

Per batch of frames: build them through one read-only connection (closed before GX starts),
run each frame's checkpoint (GX stores the result, scrubbed by the store), and keep a small
JSON summary per frame in ``quality/results/`` for the audit report and the Dagster checks.

The Data Docs site is rendered by :func:`build_data_docs`, which a Dagster run calls once,
after its last check: a build reads every stored result back for the index page and renders
each page through GX's templates, so building after every step cost more than validating.
It renders the page of every stored result that has none yet, so a result is never left
without its page, whichever build runs next. The GX context, its site builder (with its
compiled templates) and the checkpoints are loaded once per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ContextManager
from urllib.parse import unquote, urlparse

import duckdb

from orchestration.quality.atomic import write_text_atomic
from orchestration.quality.frames import FRAMES, Catalog, FrameSpec, build_frame, expectation_parameters
from orchestration.quality.offline import make_site_offline
from orchestration.quality.scrub import scrub
from orchestration.settings import EXPECTATIONS_DIR, size_bytes

log = logging.getLogger(__name__)

Connect = Callable[[], ContextManager[duckdb.DuckDBPyConnection]]

DATA_DOCS_SITE = "local_site"
# Stored results (and Data Docs pages) kept per frame; older ones are pruned.
KEEP_RESULTS = 10

# DuckDB memory of a quality connection, at most. The frames are aggregates whose largest
# hash table (one entry per vote) fits in it at scale 100 without spilling, so a larger
# limit buys no speed; but DuckDB keeps the blocks it scans up to its limit, and the checks
# run in the pipeline's process beside Dagster, dbt's manifest and GX: the cap keeps that
# process near 1 GB however big the tables get (beyond, DuckDB spills to its temp directory).
QUALITY_MEMORY_LIMIT = "384MB"


def data_docs_dir(quality_dir: Path) -> Path:
    return quality_dir / "data_docs"


def results_dir(quality_dir: Path) -> Path:
    return quality_dir / "results"


@contextlib.contextmanager
def read_only(warehouse_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse file, closed on exit."""
    conn = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        yield conn
    finally:
        conn.close()


def limit_memory(conn: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Lower the connection's memory limit to ``limit`` (never raise it)."""
    cap = size_bytes(limit)
    if cap is None:
        raise ValueError(f"not a memory size: {limit!r}")
    (current,) = conn.execute("select current_setting('memory_limit')").fetchone()
    now = size_bytes(str(current))
    if now is None or now > cap:
        conn.execute(f"set memory_limit = '{cap}B'")  # a number of our own, not data


@dataclass
class ExpectationOutcome:
    name: str  # e.g. expect_column_values_to_be_between(vote_share)
    success: bool
    detail: dict[str, Any] = field(default_factory=dict)  # scrubbed summary of GX's result


@dataclass
class ValidationOutcome:
    frame: str
    suite: str
    table: str
    success: bool
    evaluated: int
    failed: int
    failing: list[str]
    frame_rows: int
    seconds: float
    run_name: str
    validated_at: str
    docs_page: str | None  # absolute path of the Data Docs page of this result
    expectations: list[ExpectationOutcome]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def expectation_name(config: Any) -> str:
    kwargs = config.kwargs
    if "column" in kwargs:
        args = str(kwargs["column"])
    elif "column_A" in kwargs:
        args = f"{kwargs['column_A']}, {kwargs['column_B']}"
    elif "column_list" in kwargs:
        args = ", ".join(kwargs["column_list"])
    else:
        args = ""
    return f"{config.type}({args})"


def _detail(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("observed_value", "element_count", "unexpected_count", "unexpected_percent", "partial_unexpected_list")
    return scrub({k: result[k] for k in keep if k in result})


def _exception(info: Any) -> dict[str, Any]:
    """The message of an expectation that raised (GX keys it by metric, or not at all)."""
    if not info:
        return {}
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    messages = [str(e.get("exception_message")) for e in entries if e.get("raised_exception", True)]
    return {"exception": scrub("; ".join(messages))} if messages else {}


@dataclass
class _Gx:
    """What one process keeps of GX per quality directory: loading the context parses every
    suite, and a site builder compiles its page templates on first use."""

    context: Any
    site_builder: Any
    checkpoints: dict[str, Any] = field(default_factory=dict)


_GX: dict[Path, _Gx] = {}
_GX_LOCK = threading.RLock()


def _gx(quality_dir: Path) -> _Gx:
    import great_expectations as gx  # heavy import: only when validating
    from great_expectations.data_context.util import instantiate_class_from_config

    key = quality_dir.resolve()
    with _GX_LOCK:
        cached = _GX.get(key)
        if cached is None:
            key.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(
                mode="file",
                context_root_dir=str(EXPECTATIONS_DIR),
                runtime_environment={"gvw_quality_dir": str(key)},
            )
            # What context.build_data_docs builds for the site, kept instead of rebuilt per call.
            site_builder = instantiate_class_from_config(
                config=context.variables.data_docs_sites[DATA_DOCS_SITE],
                runtime_environment={
                    "data_context": context,
                    "root_directory": context.root_directory,
                    "site_name": DATA_DOCS_SITE,
                },
                config_defaults={
                    "class_name": "SiteBuilder",
                    "module_name": "great_expectations.render.renderer.site_builder",
                },
            )
            cached = _GX[key] = _Gx(context, site_builder)
        return cached


def gx_context(quality_dir: Path) -> Any:
    """The versioned file context of ``expectations/`` with its stores in ``quality_dir``.

    Loaded once per process and quality directory (a load parses every suite)."""
    return _gx(quality_dir).context


def _checkpoint(gx: _Gx, name: str) -> Any:
    with _GX_LOCK:
        checkpoint = gx.checkpoints.get(name)
        if checkpoint is None:
            checkpoint = gx.checkpoints[name] = gx.context.checkpoints.get(name)
        return checkpoint


def _run_checkpoint(checkpoint: Any, df: Any, parameters: dict[str, Any], run_id: Any) -> tuple[Any, Any]:
    """What ``checkpoint.run`` does for our checkpoints (one validation definition, no
    actions): the same stored result under the same key. It leaves out the re-reading of the
    checkpoint from its store to check it is unchanged since the context loaded it, a tenth
    of GX's time here (the context, loaded once per process, reads the versioned files)."""
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    (definition,) = checkpoint.validation_definitions
    result = definition.run(
        checkpoint_id=checkpoint.id,
        batch_parameters={"dataframe": df},
        expectation_parameters=parameters,
        result_format=checkpoint.result_format,
        run_id=run_id,
    )
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=definition.suite.name),
        run_id=run_id,
        batch_identifier=result.batch_id,
    )
    return identifier, result


def validate_frames(
    frames: Sequence[str | FrameSpec],
    *,
    connect: Connect,
    quality_dir: Path,
    run_name: str,
    docs: bool = True,
) -> list[ValidationOutcome]:
    """Validate frames with their checkpoints. Never raises on failed expectations.

    ``docs``: render the Data Docs afterwards (see :func:`build_data_docs`). A caller that
    validates in several batches passes False and builds the site once at the end; the
    outcomes name their page either way."""
    from great_expectations.core.run_identifier import RunIdentifier

    gx = _gx(quality_dir)
    parameters = expectation_parameters()
    specs = [FRAMES[f] if isinstance(f, str) else f for f in frames]
    built = []
    # One writer discipline: the connection is closed before GX runs.
    with connect() as conn:
        catalog = Catalog(conn)
        for spec in specs:
            started = time.monotonic()
            built.append((spec, build_frame(conn, spec, catalog), time.monotonic() - started))
    outcomes = []
    for spec, df, build_seconds in built:
        started = time.monotonic()
        run_time = datetime.now(UTC)
        identifier, suite_result = _run_checkpoint(
            _checkpoint(gx, spec.name), df, parameters, RunIdentifier(run_name=run_name, run_time=run_time)
        )
        expectations = [
            ExpectationOutcome(
                name=expectation_name(r.expectation_config),
                success=bool(r.success),
                detail=_detail(r.result or {}) | _exception(r.exception_info),
            )
            for r in suite_result.results
        ]
        failing = [e.name for e in expectations if not e.success]
        docs_page = _docs_page(gx, identifier)
        outcome = ValidationOutcome(
            frame=spec.name,
            suite=spec.suite,
            table=spec.table,
            success=bool(suite_result.success),
            evaluated=len(expectations),
            failed=len(failing),
            failing=failing,
            frame_rows=len(df),
            seconds=round(build_seconds + time.monotonic() - started, 3),
            run_name=run_name,
            validated_at=run_time.isoformat(),
            docs_page=str(docs_page) if docs_page else None,
            expectations=expectations,
        )
        write_text_atomic(
            results_dir(quality_dir) / f"{spec.name}.json",
            json.dumps(outcome.to_json(), indent=2, default=str) + "\n",
        )
        outcomes.append(outcome)
    if docs:
        build_data_docs(quality_dir)
    return outcomes


def validate_frame(
    frame: str | FrameSpec, *, connect: Connect, quality_dir: Path, run_name: str
) -> ValidationOutcome:
    """Validate one frame and render its Data Docs page (see :func:`validate_frames`)."""
    return validate_frames([frame], connect=connect, quality_dir=quality_dir, run_name=run_name)[0]


def build_data_docs(quality_dir: Path) -> int:
    """Prune old results, then render the Data Docs: the page of every stored result that
    has none yet, every suite's page and the index; make the site work offline. Returns
    how many result pages were rendered."""
    gx = _gx(quality_dir)
    started = time.time()
    prune_results(quality_dir)
    with _GX_LOCK:
        pending = [
            key
            for key in gx.context.validation_results_store.list_keys()
            if not (page := _docs_page(gx, key)) or not page.is_file()
        ]
        suites = gx.context.expectations_store.list_keys()
        # Never an empty list: GX reads that as "render every page".
        gx.site_builder.build(resource_identifiers=[*pending, *suites], build_index=True)
    # Pages written just now (and the static files GX copies on every build).
    make_site_offline(data_docs_dir(quality_dir), modified_since=started - 1)
    return len(pending)


def prune_results(quality_dir: Path, keep: int = KEEP_RESULTS) -> int:
    """Keep the ``keep`` newest stored results (and their Data Docs pages) of every frame, so
    the store and the Data Docs index stay small however long the warehouse runs. Results
    are stored as ``gx/validations/<suite>/<run name>/<run time>/<batch>.json``."""
    store = quality_dir / "gx" / "validations"
    if not store.is_dir():
        return 0
    by_frame: dict[tuple[str, str], list[Path]] = {}
    for path in store.glob("*/*/*/*.json"):
        suite = path.relative_to(store).parts[0]
        by_frame.setdefault((suite, path.name), []).append(path)
    removed = 0
    docs = data_docs_dir(quality_dir) / "validations"
    for paths in by_frame.values():
        paths.sort(key=lambda p: p.parent.name)  # run time, e.g. 20261129T035243.471538Z
        for old in paths[:-keep] if len(paths) > keep else []:
            relative = old.relative_to(store)
            old.unlink(missing_ok=True)
            (docs / relative.with_suffix(".html")).unlink(missing_ok=True)
            for folder in (old.parent, old.parent.parent, (docs / relative).parent, (docs / relative).parent.parent):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only when empty
            removed += 1
    return removed


def _docs_page(gx: _Gx, identifier: Any) -> Path | None:
    """Where the Data Docs page of a result is (or will be, once the site is built)."""
    try:
        url = gx.site_builder.get_resource_url(resource_identifier=identifier, only_if_exists=False)
    except Exception:  # noqa: BLE001 - a missing link must not fail the validation
        log.warning("could not resolve the Data Docs page of %s", identifier, exc_info=True)
        return None
    return Path(unquote(urlparse(url).path)) if url else None


def latest_outcomes(quality_dir: Path) -> list[dict[str, Any]]:
    """The latest summary of every frame validated in this data directory."""
    folder = results_dir(quality_dir)
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
