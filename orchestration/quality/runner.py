"""Run a versioned GX checkpoint on a frame built in DuckDB; results and Data Docs go to
``$GVW_DATA_DIR/quality`` (never into the repository).

For each frame: build it through a read-only connection (closed before GX starts) and run
its checkpoint (GX stores the result, scrubbed by the store). Then, once per batch: prune old
results, render the Data Docs pages and index, make the site work offline, and keep a small
JSON summary per frame in ``quality/results/`` for the audit report and the Dagster checks.
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
from orchestration.quality.frames import FRAMES, FrameSpec, build_frame, expectation_parameters
from orchestration.quality.offline import make_site_offline
from orchestration.quality.scrub import scrub
from orchestration.settings import EXPECTATIONS_DIR

log = logging.getLogger(__name__)

Connect = Callable[[], ContextManager[duckdb.DuckDBPyConnection]]

DATA_DOCS_SITE = "local_site"
# Stored results (and Data Docs pages) kept per frame; older ones are pruned.
KEEP_RESULTS = 10


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


_CONTEXTS: dict[Path, Any] = {}
_CONTEXT_LOCK = threading.Lock()


def gx_context(quality_dir: Path) -> Any:
    """The versioned file context of ``expectations/`` with its stores in ``quality_dir``.

    Loaded once per process and quality directory (a load parses every suite)."""
    import great_expectations as gx  # heavy import: only when validating

    key = quality_dir.resolve()
    with _CONTEXT_LOCK:
        context = _CONTEXTS.get(key)
        if context is None:
            key.mkdir(parents=True, exist_ok=True)
            context = gx.get_context(
                mode="file",
                context_root_dir=str(EXPECTATIONS_DIR),
                runtime_environment={"gvw_quality_dir": str(key)},
            )
            _CONTEXTS[key] = context
        return context


def validate_frames(
    frames: Sequence[str | FrameSpec],
    *,
    connect: Connect,
    quality_dir: Path,
    run_name: str,
) -> list[ValidationOutcome]:
    """Validate frames with their checkpoints, then render their Data Docs pages and the
    index once (rendering costs GX ~0.5 s a page, so pages are built per batch, not per
    result). Never raises on failed expectations."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    context = gx_context(quality_dir)
    parameters = expectation_parameters()
    validated = []
    for frame in frames:
        spec = FRAMES[frame] if isinstance(frame, str) else frame
        started = time.monotonic()
        # One writer discipline: the connection is closed before GX runs.
        with connect() as conn:
            df = build_frame(conn, spec)
        run_time = datetime.now(UTC)
        result = context.checkpoints.get(spec.name).run(
            batch_parameters={"dataframe": df},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=run_name, run_time=run_time),
        )
        ((identifier, suite_result),) = result.run_results.items()
        validated.append((spec, identifier, suite_result, len(df), run_time, time.monotonic() - started))

    started = time.monotonic()
    prune_results(quality_dir)
    identifiers = [v[1] for v in validated] + [
        ExpectationSuiteIdentifier(name=s) for s in sorted({v[0].suite for v in validated})
    ]
    context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=identifiers)
    make_site_offline(data_docs_dir(quality_dir))
    docs_seconds = (time.monotonic() - started) / max(len(validated), 1)

    outcomes = []
    for spec, identifier, suite_result, rows, run_time, seconds in validated:
        expectations = [
            ExpectationOutcome(
                name=expectation_name(r.expectation_config),
                success=bool(r.success),
                detail=_detail(r.result or {}) | _exception(r.exception_info),
            )
            for r in suite_result.results
        ]
        failing = [e.name for e in expectations if not e.success]
        docs_page = _docs_page(context, identifier)
        outcome = ValidationOutcome(
            frame=spec.name,
            suite=spec.suite,
            table=spec.table,
            success=bool(suite_result.success),
            evaluated=len(expectations),
            failed=len(failing),
            failing=failing,
            frame_rows=rows,
            seconds=round(seconds + docs_seconds, 3),
            run_name=run_name,
            validated_at=run_time.isoformat(),
            docs_page=str(docs_page) if docs_page and docs_page.is_file() else None,
            expectations=expectations,
        )
        write_text_atomic(
            results_dir(quality_dir) / f"{spec.name}.json",
            json.dumps(outcome.to_json(), indent=2, default=str) + "\n",
        )
        outcomes.append(outcome)
    return outcomes


def validate_frame(
    frame: str | FrameSpec, *, connect: Connect, quality_dir: Path, run_name: str
) -> ValidationOutcome:
    """Validate one frame (see :func:`validate_frames`)."""
    return validate_frames([frame], connect=connect, quality_dir=quality_dir, run_name=run_name)[0]


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


def _docs_page(context: Any, identifier: Any) -> Path | None:
    try:
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_name=DATA_DOCS_SITE)
    except Exception:  # noqa: BLE001 - a missing link must not fail the validation
        log.warning("could not resolve the Data Docs page of %s", identifier, exc_info=True)
        return None
    if not urls or not urls[0].get("site_url"):
        return None
    return Path(unquote(urlparse(urls[0]["site_url"]).path))


def latest_outcomes(quality_dir: Path) -> list[dict[str, Any]]:
    """The latest summary of every frame validated in this data directory."""
    folder = results_dir(quality_dir)
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
