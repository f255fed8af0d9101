"""The run-failure sensor records a failed run and posts it to a webhook on this machine."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import dagster as dg
import pytest

from orchestration.alerts import run_failure_alert


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook():
    _Receiver.received = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", _Receiver.received
    server.shutdown()
    server.server_close()


def _failed_run(instance: dg.DagsterInstance) -> tuple[dg.DagsterRun, dg.DagsterEvent]:
    @dg.asset
    def fragile() -> None:
        raise OSError("landing share unreachable")

    job = dg.Definitions(assets=[fragile], jobs=[dg.define_asset_job("nightly", [fragile])]).resolve_job_def("nightly")
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
    return instance.get_run_by_id(result.run_id), failure


def test_a_failed_run_is_recorded_and_posted(data_dir: Path, webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    url, received = webhook
    monkeypatch.setenv("GVW_ALERT_WEBHOOK", url)
    with dg.instance_for_test() as instance:
        run, event = _failed_run(instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=event, dagster_instance=instance, dagster_run=run,
        ).for_run_failure()
        run_failure_alert(context)

    lines = (data_dir / "logs" / "failures.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["run_id"] == run.run_id and record["job"] == "nightly"
    assert record["failed_steps"] == [{"step": "fragile", "error": "OSError: landing share unreachable"}]
    assert received == [record]


def test_a_broken_webhook_does_not_lose_the_record(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on this loopback port: the post fails, the record stays on disk.
    monkeypatch.setenv("GVW_ALERT_WEBHOOK", "http://127.0.0.1:9/alerts")
    with dg.instance_for_test() as instance:
        run, event = _failed_run(instance)
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=event, dagster_instance=instance, dagster_run=run,
        ).for_run_failure()
        run_failure_alert(context)
    assert json.loads((data_dir / "logs" / "failures.jsonl").read_text())["run_id"] == run.run_id
