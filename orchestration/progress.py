"""A Dagster logger that prints one short line per stage event, for ``gvw run``.

Dagster's console logger prints every engine event; a data engineer watching a run in a
terminal wants to see which stage is running, what it produced and how long it took.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import dagster as dg

_SHOWN_METADATA = (
    "files_read", "files_skipped", "records_read", "accepted", "quarantined",
    "row_count", "dagster/row_count", "rows", "datasets", "version", "path",
)


def _metadata_summary(metadata: dict) -> str:
    parts = []
    for key in _SHOWN_METADATA:
        if key in metadata:
            value = getattr(metadata[key], "value", metadata[key])
            parts.append(f"{key.split('/')[-1]}={value:,}" if isinstance(value, int) else f"{key.split('/')[-1]}={value}")
    return ", ".join(parts)


def root_cause(error) -> str:
    """The innermost message of a Dagster error chain: what actually went wrong."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    lines = error.message.strip().splitlines()
    return lines[0] if lines else error.cls_name or "unknown error"


class ProgressHandler(logging.Handler):
    """Turns Dagster events into progress lines: step start/end, materializations, checks."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(level=logging.DEBUG)
        self.stream = stream
        self.started = time.monotonic()
        self.step_started: dict[str, float] = {}

    def _print(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.stream.write(f"[{elapsed:7.1f}s] {text}\n")
        self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:  # noqa: C901 - one branch per event kind
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None:
            if record.levelno >= logging.WARNING:
                self._print(f"{record.levelname.lower()}: {meta.get('orig_message') or record.getMessage()}")
            return
        step = event.step_key or ""
        if event.is_step_start:
            self.step_started[step] = time.monotonic()
            self._print(f"start  {step}")
        elif event.is_step_success:
            took = time.monotonic() - self.step_started.get(step, self.started)
            self._print(f"done   {step} ({took:.1f}s)")
        elif event.is_step_failure:
            self._print(f"FAILED {step}: {root_cause(event.step_failure_data.error)}")
        elif event.is_step_skipped:
            self._print(f"skip   {step}")
        elif event.is_step_materialization:
            mat = event.step_materialization_data.materialization
            summary = _metadata_summary(dict(mat.metadata))
            self._print(f"  asset {mat.asset_key.to_user_string()}" + (f": {summary}" if summary else ""))
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            check = event.asset_check_evaluation_data
            status = "passed" if check.passed else f"FAILED ({check.severity.value.lower()})"
            self._print(f"  check {check.asset_key.to_user_string()}:{check.check_name} {status}")


@dg.logger(description="Short progress lines for the gvw command line.")
def gvw_progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("gvw_progress", level=logging.DEBUG)
    logger.addHandler(ProgressHandler(sys.stdout))
    return logger
