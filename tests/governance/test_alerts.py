"""Alert sensors against a real local HTTP receiver: one alert per transition, 503 retried, a receiver that
is down never breaks the sensor and gets the alert once it is back."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from typing import Any

import dagster as dg
import pytest

from sophia_dagster.governance.alerts import WebhookSender
from sophia_dagster.governance.config import AlertConfig
from sophia_dagster.governance.sensors import build_check_alert_sensor, build_run_failure_alert_sensor
from tests.fakes.http import JsonHandler, serving

UI = "http://dagster.test:3000"
TABLE = dg.AssetKey(["snowflake", "sophia", "raw", "deals"])
CONFIG = AlertConfig(timeout_seconds=2, max_attempts=3, max_backoff_seconds=0.2)


class Receiver:
    """What the fake webhook received, and the statuses it answers with next (then 200)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.script: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()

    def handler(self) -> type[JsonHandler]:
        receiver = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = json.loads(self.read_body())
                with receiver.lock:
                    receiver.attempts += 1
                    status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                    if status == 200:
                        receiver.bodies.append(body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        return Handler


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    found = Receiver()
    with serving(found.handler()) as port:
        yield found, port


@dg.asset(key=TABLE)
def deals() -> None: ...


@dg.asset_check(asset=TABLE, name="parity")
def parity() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.op
def explode() -> None:
    raise RuntimeError("boom")


@dg.job
def doomed() -> None:
    explode()


DEFS = dg.Definitions(assets=[deals], asset_checks=[parity], jobs=[doomed])


def _report(instance: dg.DagsterInstance, passed: bool) -> None:
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=TABLE,
            check_name="parity",
            passed=passed,
            metadata={"summary": "deals: 1 key differs" if not passed else "deals: ok", "next_step": "re-run"},
        )
    )


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> str:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=DEFS)
    result = sensor(context)
    return result.cursor


def test_one_alert_per_transition_with_slack_and_n8n_fields(receiver: tuple[Receiver, int]) -> None:
    found, port = receiver
    sensor = build_check_alert_sensor(UI, lambda: f"http://127.0.0.1:{port}/hook", CONFIG)
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, True)
        cursor = _tick(sensor, instance, None)
        _report(instance, False)
        cursor = _tick(sensor, instance, cursor)
        _report(instance, False)
        cursor = _tick(sensor, instance, cursor)
        cursor = _tick(sensor, instance, cursor)
        _report(instance, True)
        cursor = _tick(sensor, instance, cursor)
    assert [b["status"] for b in found.bodies] == ["firing", "resolved"]
    firing = found.bodies[0]
    assert firing["kind"] == "check_failed" and firing["severity"] == "ERROR"
    assert firing["asset"] == "snowflake/sophia/raw/deals" and firing["check"] == "parity"
    assert firing["url"] == f"{UI}/assets/snowflake/sophia/raw/deals?view=checks"
    assert "deals: 1 key differs" in firing["text"] and firing["blocks"][0]["type"] == "header"
    assert found.bodies[1]["title"] == "Resolved: snowflake/sophia/raw/deals: parity"


def test_a_503_is_retried_and_the_alert_arrives_once(receiver: tuple[Receiver, int]) -> None:
    found, port = receiver
    found.script = [(503, {}), (429, {"Retry-After": "0"})]
    sensor = build_check_alert_sensor(UI, lambda: f"http://127.0.0.1:{port}/hook", CONFIG)
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, False)
        cursor = _tick(sensor, instance, None)
        cursor = _tick(sensor, instance, cursor)
    assert found.attempts == 3 and len(found.bodies) == 1
    assert json.loads(cursor)["pending"] == []


def test_other_4xx_are_not_retried(receiver: tuple[Receiver, int]) -> None:
    found, port = receiver
    found.script = [(400, {})]
    outcome, reason = WebhookSender(f"http://127.0.0.1:{port}/hook", max_backoff_seconds=0).send({"text": "x"})
    assert (outcome, reason, found.attempts) == ("refused", "HTTP 400", 1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def _serve_on(port: int, handler: type[JsonHandler]) -> Iterator[None]:
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def test_a_receiver_that_is_down_gets_the_alert_once_it_is_back() -> None:
    port = _free_port()
    found = Receiver()
    sensor = build_check_alert_sensor(UI, lambda: f"http://127.0.0.1:{port}/hook", CONFIG)
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, False)
        cursor = _tick(sensor, instance, None)
        assert len(json.loads(cursor)["pending"]) == 1
        with _serve_on(port, found.handler()):
            cursor = _tick(sensor, instance, cursor)
            cursor = _tick(sensor, instance, cursor)
    assert [b["kind"] for b in found.bodies] == ["check_failed"]
    assert json.loads(cursor)["pending"] == []


def test_a_failed_run_is_alerted_once_with_its_link(receiver: tuple[Receiver, int]) -> None:
    found, port = receiver
    sensor = build_run_failure_alert_sensor(UI, lambda: f"http://127.0.0.1:{port}/hook", CONFIG)
    with dg.DagsterInstance.ephemeral() as instance:
        result = DEFS.resolve_job_def("doomed").execute_in_process(instance=instance, raise_on_error=False)
        cursor = _tick(sensor, instance, None)
        _tick(sensor, instance, cursor)
    assert len(found.bodies) == 1
    body = found.bodies[0]
    assert body["kind"] == "run_failed" and body["job"] == "doomed" and body["run_id"] == result.run_id
    assert body["url"] == f"{UI}/runs/{result.run_id}"


def test_without_a_webhook_nothing_is_queued() -> None:
    sensor = build_check_alert_sensor(UI, lambda: None, CONFIG)
    with dg.DagsterInstance.ephemeral() as instance:
        _report(instance, False)
        cursor = _tick(sensor, instance, None)
    assert json.loads(cursor)["pending"] == []
