"""One trace per mission across processes: vpctl -> dispatcher (dispatch, route,
assign) -> worker (execute, finalize), carried in gRPC metadata and in the
envelope, and surviving a re-queue after the worker is killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry import trace

from services.common.telemetry import tracing
from tests.support.e2e import E2EStack
from tests.support.processes import console_script
from tests.support.waiting import wait_until

CODER = "vp.coder.primary"


def spans(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def traced_stack(sqlite_url, tmp_path, monkeypatch):
    trace_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("VP_TRACE_FILE", str(trace_file))
    stack = E2EStack(sqlite_url, tmp_path)
    (tmp_path / "handoff").mkdir()
    stack.start_registry()
    stack.start_dispatcher()
    yield stack, trace_file
    stack.stop()


def vpctl_dispatch(stack: E2EStack, *extra: str) -> dict:
    result = subprocess.run([console_script("vpctl"), "--dispatcher", stack.dispatcher_address, "--json", "dispatch",
                             "--vp-id", CODER, "--type", "code", "--objective", "traced work", *extra],
                            capture_output=True, text=True, timeout=120, env={**os.environ, **stack.client_env()})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])


def by_name(all_spans: list[dict], name: str) -> list[dict]:
    return [s for s in all_spans if s["name"] == name]


def test_one_trace_from_client_to_worker_finalize(traced_stack):
    stack, trace_file = traced_stack
    stack.start_worker(CODER)
    reply = vpctl_dispatch(stack, "--wait")
    mission_id = reply["mission"]["envelope"]["mission_id"]
    wait_until(lambda: by_name(spans(trace_file), "vp.finalize"), timeout=20, what="the worker's finalize span")
    recorded = spans(trace_file)
    (client,) = by_name(recorded, "vp.client.dispatch")
    (dispatch,) = by_name(recorded, "vp.dispatch")
    (route,) = by_name(recorded, "vp.route")
    (assign,) = by_name(recorded, "vp.assign")
    (execute,) = by_name(recorded, "vp.execute")
    (finalize,) = by_name(recorded, "vp.finalize")
    chain = [client, dispatch, route, assign, execute, finalize]
    assert {s["trace_id"] for s in chain} == {client["trace_id"]}
    assert (client["service"], dispatch["service"], execute["service"]) == ("vpctl", "vp-dispatcher", "vp-worker")
    assert dispatch["parent_span_id"] == client["span_id"] and dispatch["kind"] == "SERVER"
    assert route["parent_span_id"] == dispatch["span_id"]
    assert assign["parent_span_id"] == client["span_id"]  # from the envelope, after the queue
    assert execute["parent_span_id"] == assign["span_id"]
    assert finalize["parent_span_id"] == execute["span_id"]
    for span in (assign, execute):
        attributes = span["attributes"]
        assert attributes["mission_id"] == mission_id and attributes["vp_id"] == CODER
        assert attributes["attempt"] == 1 and attributes["run_id"].startswith("r-")
        assert attributes["session_id"].startswith("s-")


def test_trace_survives_a_requeue_after_worker_kill(traced_stack, tmp_path):
    stack, trace_file = traced_stack
    script = tmp_path / "slow.py"
    marker = tmp_path / "started"
    script.write_text(f"import pathlib, sys, time\npathlib.Path({str(marker)!r}).write_text('x')\n"
                      "time.sleep(float(sys.argv[1]))\n")
    worker = stack.start_worker(CODER, "--command", f"{sys.executable} {script} 30", executor="subprocess")
    reply = vpctl_dispatch(stack)
    mission_id = reply["mission"]["envelope"]["mission_id"]
    wait_until(marker.exists, timeout=20, what="the first run")
    worker.kill()
    stack.start_worker(CODER, "--command", f"{sys.executable} {script} 0", executor="subprocess")
    # The worker's execute span is written when its run ends, which may be after the
    # dispatcher's finalize: wait for both.
    wait_until(lambda: by_name(spans(trace_file), "vp.finalize") and [
        s for s in by_name(spans(trace_file), "vp.execute") if s["attributes"]["attempt"] == 2],
        timeout=60, what="the second run to finish")
    recorded = spans(trace_file)
    assigns = sorted(by_name(recorded, "vp.assign"), key=lambda s: s["attributes"]["attempt"])
    assert [s["attributes"]["attempt"] for s in assigns] == [1, 2]
    assert {s["trace_id"] for s in assigns} == {by_name(recorded, "vp.client.dispatch")[0]["trace_id"]}
    (execute,) = [s for s in by_name(recorded, "vp.execute") if s["attributes"]["attempt"] == 2]
    assert execute["parent_span_id"] == assigns[1]["span_id"]
    assert execute["attributes"]["mission_id"] == mission_id


def test_tracing_is_off_by_default():
    assert tracing.configure_tracing("test", env={}) is False
    assert tracing.configure_tracing("test", env={"OTEL_TRACES_EXPORTER": "none"}) is False
    with tracing.span("nothing") as span:
        assert span is trace.INVALID_SPAN
    assert tracing.current_traceparent() == ("", "")
    assert tracing.outgoing_metadata() == []


def test_standard_otel_resource_variables_win_over_the_code_default(traced_stack, monkeypatch):
    """OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES set for one worker process name
    its spans; the dispatcher, without them, keeps its default name."""
    stack, trace_file = traced_stack
    monkeypatch.setenv("OTEL_SERVICE_NAME", "vp-worker-coder")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci,service.namespace=vp")
    stack.start_worker(CODER)  # inherits the environment above
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    vpctl_dispatch(stack, "--wait")
    wait_until(lambda: by_name(spans(trace_file), "vp.finalize"), timeout=20, what="the worker's finalize span")
    recorded = spans(trace_file)
    (execute,) = by_name(recorded, "vp.execute")
    assert execute["service"] == "vp-worker-coder"
    assert execute["resource"]["deployment.environment"] == "ci" and execute["resource"]["service.namespace"] == "vp"
    (dispatch,) = by_name(recorded, "vp.dispatch")
    assert dispatch["service"] == "vp-dispatcher" and "deployment.environment" not in dispatch["resource"]
    assert tracing.resource_for("vp-registry").attributes["service.name"] == "vp-registry"
