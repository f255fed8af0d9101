"""Run-failure alerting: every failed run is recorded in the data directory and, when
``GVW_ALERT_WEBHOOK`` is set, posted there as JSON."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.progress import root_cause
from orchestration.settings import Settings, load_settings

FAILURES_FILE = "failures.jsonl"


def failure_record(run: Any, step_failures: list[Any]) -> dict[str, Any]:
    """What an on-call engineer needs: which run, which step and asset, and why."""
    steps = []
    for event in step_failures:
        steps.append({
            "step": event.step_key,
            "error": root_cause(event.step_failure_data.error if event.step_failure_data else None),
        })
    return {
        "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "job": run.job_name,
        "assets": sorted(k.to_user_string() for k in (run.asset_selection or [])),
        "failed_steps": steps,
    }


def record_failure(settings: Settings, record: dict[str, Any]) -> Path:
    path = settings.data_dir / "logs" / FAILURES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
    return path


def post_webhook(url: str, record: dict[str, Any], timeout: float = 10.0) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(record).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "global-vision-warehouse"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - operator-configured URL
        return response.status


@dg.run_failure_sensor(
    name="run_failure_alert",
    description="Records every failed run (job, steps, root cause) in $GVW_DATA_DIR/logs/failures.jsonl "
    "and posts it to GVW_ALERT_WEBHOOK when set.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    settings = load_settings()
    record = failure_record(context.dagster_run, context.get_step_failure_events())
    path = record_failure(settings, record)
    context.log.info(f"recorded failure of run {context.dagster_run.run_id} in {path}")
    if settings.alert_webhook:
        try:
            status = post_webhook(settings.alert_webhook, record)
            context.log.info(f"alert posted ({status})")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            # The failure is on disk already; a broken webhook must not hide it.
            context.log.warning(f"alert webhook failed: {exc}")
