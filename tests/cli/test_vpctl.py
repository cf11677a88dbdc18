"""vpctl as a real subprocess (the installed console script) against the fake server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.contracts.vp.v1 import enums_pb2 as enums
from services.common.contracts.vp.v1 import session_pb2
from tests.support.fake_mission_control import unavailable

VPCTL = Path(sys.executable).parent / "vpctl"
ENV_VARS = ("VP_DISPATCHER_ADDR", "VP_REGISTRY_ADDR", "VPCTL_TIMEOUT", "VPCTL_LOG_LEVEL")


def vpctl(*args: str, server=None, env: dict[str, str] | None = None, timeout: float = 30):
    argv = [str(VPCTL)]
    if server is not None:
        argv += ["--dispatcher", server.address, "--registry", server.address]
    base = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    result = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                            env={**base, **(env or {})})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def dispatch_json(server, *extra: str) -> dict:
    result = vpctl("--json", "dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "obj",
                   *extra, server=server)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_help_lists_env_vars_and_exit_codes():
    result = vpctl("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for name in ("VP_DISPATCHER_ADDR", "VP_REGISTRY_ADDR", "VPCTL_TIMEOUT", "VPCTL_LOG_LEVEL"):
        assert f"[env: {name}]" in text
    assert "exit codes:" in result.stdout and "5  unavailable" in result.stdout
    for command in ("dispatch", "get", "list", "wait", "cancel", "artifacts", "sessions", "events", "up"):
        assert command in result.stdout
    sub = vpctl("dispatch", "--help")
    for flag in ("--vp-id", "--type", "--objective", "--idempotency-key", "--target-path", "--priority",
                 "--max-attempts", "--label", "--constraints", "--deadline-seconds", "--wait", "--json"):
        assert flag in sub.stdout


def test_dispatch_wait_completed_shows_progress_and_exits_0(fake_thread):
    result = vpctl("dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "ship it",
                   "--label", "fake.outcome=completed", "--label", "team=ops", "--wait", server=fake_thread)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("step 1/2") < out.index("step 2/2") < out.index("COMPLETED")
    assert "dispatched m-0001" in out
    mission = fake_thread.fake.missions["m-0001"]
    assert dict(mission.envelope.labels) == {"fake.outcome": "completed", "team": "ops"}
    assert mission.envelope.idempotency_key  # generated, so a retried dispatch cannot duplicate


@pytest.mark.parametrize("outcome, code", [("failed", 1), ("blocked", 7)])
def test_dispatch_wait_not_completed_exits_1_or_7_when_blocked(fake_thread, outcome, code):
    result = vpctl("dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "x",
                   "--label", f"fake.outcome={outcome}", "--wait", "--json", server=fake_thread)
    assert result.returncode == code, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["mission"]["envelope"]["mission_id"] == "m-0001" and lines[0]["deduplicated"] is False
    events = [line["event"]["event_type"] for line in lines[1:-1]]
    assert "vp.mission.progress" in events and events[-1] == f"vp.mission.{outcome}"
    assert lines[-1]["mission"]["state"] == f"MISSION_STATE_{outcome.upper()}"
    assert lines[-1]["timed_out"] is False


def test_dispatch_falling_back_to_the_caller_exits_1(fake_thread):
    result = vpctl("dispatch", "--vp-id", "vp.disabled.primary", "--type", "code", "--objective", "x",
                   server=fake_thread)
    assert result.returncode == 1
    assert "fell back to the caller" in result.stderr


def test_dispatch_options_reach_the_envelope(fake_thread):
    data = dispatch_json(fake_thread, "--idempotency-key", "k-7", "--target-path", "/srv/x", "--priority", "3",
                         "--max-attempts", "2", "--constraints", '{"lang": "py"}', "--deadline-seconds", "600")
    env = data["mission"]["envelope"]
    assert env["idempotency_key"] == "k-7" and env["target_path"] == "/srv/x" and env["priority"] == 3
    assert env["max_attempts"] == 2 and env["constraints"] == {"lang": "py"} and "deadline" in env

    first = dispatch_json(fake_thread, "--idempotency-key", "k-8", "--label", "a=b")
    again = dispatch_json(fake_thread, "--idempotency-key", "k-8", "--label", "a=b")
    assert first["deduplicated"] is False and again["deduplicated"] is True
    assert again["mission"]["envelope"]["mission_id"] == first["mission"]["envelope"]["mission_id"]
    human = vpctl("dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "obj",
                  "--idempotency-key", "k-8", "--label", "a=b", server=fake_thread)
    assert human.returncode == 0 and human.stdout.startswith("existing mission")


def test_exit_codes_for_errors(fake_thread):
    missing = vpctl("get", "m-missing", server=fake_thread)
    assert missing.returncode == 3
    assert missing.stderr.strip().count("\n") == 0
    assert "NOT_FOUND MISSION_NOT_FOUND" in missing.stderr

    invalid = vpctl("dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", " ",
                    server=fake_thread)
    assert invalid.returncode == 2
    assert "INVALID_ARGUMENT" in invalid.stderr and "envelope.objective: required" in invalid.stderr

    unknown = vpctl("dispatch", "--vp-id", "vp.nope", "--type", "code", "--objective", "x", server=fake_thread)
    assert unknown.returncode == 2 and "UNKNOWN_VP" in unknown.stderr and "envelope.vp_id" in unknown.stderr

    dispatch_json(fake_thread, "--idempotency-key", "dup")
    conflict = vpctl("dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "other",
                     "--idempotency-key", "dup", server=fake_thread)
    assert conflict.returncode == 4 and "IDEMPOTENCY_CONFLICT" in conflict.stderr

    usage = vpctl("dispatch", "--vp-id", "v", "--type", "t", "--objective", "o", "--label", "novalue")
    assert usage.returncode == 2
    assert vpctl("dispatch", "--vp-id", "v", "--type", "t", "--objective", "o", "--constraints", "[1]").returncode == 2
    assert vpctl().returncode == 2


def test_unavailable_exits_5():
    dead = f"127.0.0.1:{free_port()}"
    result = vpctl("--dispatcher", dead, "--timeout", "0.5", "get", "m-1")
    assert result.returncode == 5 and result.stderr.startswith("vpctl: UNAVAILABLE")


def test_unavailable_from_the_server_is_retried_then_exits_5(fake_thread):
    fake_thread.fake.fail_next("GetMission", unavailable(retry_delay=0.01), times=2)
    dispatch_json(fake_thread)
    assert vpctl("get", "m-0001", server=fake_thread).returncode == 0
    fake_thread.fake.fail_next("GetMission", unavailable(retry_delay=0.01), times=20)
    result = vpctl("get", "m-0001", server=fake_thread)
    assert result.returncode == 5 and "STORE_BUSY" in result.stderr


def test_env_var_selects_the_dispatcher(fake_thread):
    dispatch_json(fake_thread)
    result = vpctl("get", "m-0001", "--json", env={"VP_DISPATCHER_ADDR": fake_thread.address})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["envelope"]["mission_id"] == "m-0001"


def test_wait_cancel_and_timeout(fake_thread):
    dispatch_json(fake_thread)
    timed_out = vpctl("wait", "m-0001", "--timeout", "0.3", server=fake_thread)
    assert timed_out.returncode == 5 and "timed out" in timed_out.stderr
    cancelled = vpctl("cancel", "m-0001", "--reason", "no longer needed", "--json", server=fake_thread)
    assert cancelled.returncode == 0
    assert json.loads(cancelled.stdout)["state"] == "MISSION_STATE_CANCELLED"
    assert fake_thread.fake.requests["CancelMission"][0].reason == "no longer needed"
    waited = vpctl("--json", "wait", "m-0001", server=fake_thread)
    assert waited.returncode == 1
    assert json.loads(waited.stdout)["mission"]["state"] == "MISSION_STATE_CANCELLED"

    dispatch_json(fake_thread, "--label", "fake.outcome=completed")
    ok = vpctl("wait", "m-0002", "--timeout", "10", server=fake_thread)
    assert ok.returncode == 0 and "COMPLETED" in ok.stdout


def test_list_get_json_and_human(fake_thread):
    for _ in range(3):
        dispatch_json(fake_thread)
    listed = vpctl("list", "--json", "--state", "queued", "--limit", "2", server=fake_thread)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["envelope"]["mission_id"] for r in rows] == ["m-0003", "m-0002"]  # newest first
    human = vpctl("list", "--vp-id", "vp.coder.primary", server=fake_thread)
    assert human.stdout.splitlines()[0].split()[:3] == ["MISSION", "VP", "STATE"]
    assert len(human.stdout.splitlines()) == 4
    assert vpctl("list", "--state", "sleeping", server=fake_thread).returncode == 2
    got = vpctl("get", "m-0003", server=fake_thread)
    assert got.returncode == 0 and "QUEUED" in got.stdout and "m-0003" in got.stdout


def test_events_consumer_resumes_where_it_stopped(fake_thread):
    fake = fake_thread.fake
    for i in range(3):
        fake.emit("vp.mission.progress", "m-1", "vp.coder.primary", message=f"first {i}")
    first = vpctl("events", "--consumer", "ops", "--json", server=fake_thread)
    assert first.returncode == 0
    assert [json.loads(line)["event_id"] for line in first.stdout.splitlines()] == ["1", "2", "3"]
    assert fake.cursors["ops"] == 3
    for i in range(2):
        fake.emit("vp.mission.progress", "m-1", "vp.coder.primary", message=f"second {i}")
    fake.drop_streams_after(1)
    second = vpctl("events", "--consumer", "ops", server=fake_thread)
    assert second.returncode == 0
    lines = second.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["#4", "#5"] and "second 1" in lines[1]
    assert fake.cursors["ops"] == 5
    filtered = vpctl("events", "--after", "4", "--mission-id", "m-1", server=fake_thread)
    assert [line.split()[0] for line in filtered.stdout.splitlines()] == ["#5"]


def test_artifacts_list_print_and_download(fake_thread, tmp_path):
    fake = fake_thread.fake
    dispatch_json(fake_thread)
    fake.artifacts["m-0001"] = [("result.md", b"# result\nall good\n"), ("logs/run.txt", b"ok")]
    listed = vpctl("artifacts", "m-0001", "--json", server=fake_thread)
    assert [json.loads(line) for line in listed.stdout.splitlines()] == [
        {"path": "result.md", "size": 18}, {"path": "logs/run.txt", "size": 2}]
    printed = vpctl("artifacts", "m-0001", "--path", "result.md", server=fake_thread)
    assert printed.returncode == 0 and printed.stdout == "# result\nall good\n"
    out = tmp_path / "out"
    saved = vpctl("artifacts", "m-0001", "--out", str(out), server=fake_thread)
    assert saved.returncode == 0, saved.stderr
    assert (out / "logs" / "run.txt").read_bytes() == b"ok"
    fake.artifacts["m-0001"].append(("../escape.txt", b"evil"))
    refused = vpctl("artifacts", "m-0001", "--out", str(out), server=fake_thread)
    assert refused.returncode == 6 and "PATH_NOT_ALLOWED" in refused.stderr
    assert not (tmp_path / "escape.txt").exists()
    missing = vpctl("artifacts", "m-0001", "--path", "nope.txt", server=fake_thread)
    assert missing.returncode == 3


def test_sessions(fake_thread):
    fake_thread.registry.sessions.update({
        "vp.coder.primary": session_pb2.VpSession(
            vp_id="vp.coder.primary", status=enums.SESSION_STATUS_ACTIVE, effective_status=enums.SESSION_STATUS_DEGRADED,
            stale=True, stale_reason=enums.STALE_REASON_LEASE_EXPIRED, lease_epoch=3, lease_owner="host:1"),
        "vp.general.primary": session_pb2.VpSession(
            vp_id="vp.general.primary", status=enums.SESSION_STATUS_IDLE, effective_status=enums.SESSION_STATUS_IDLE),
    })
    stale = vpctl("sessions", "--stale", server=fake_thread)
    lines = stale.stdout.splitlines()
    assert lines[0].split()[:3] == ["VP", "STATUS", "EFFECTIVE"]
    assert len(lines) == 2 and "DEGRADED" in lines[1] and "lease_expired" in lines[1]
    idle = vpctl("sessions", "--status", "idle", "--json", server=fake_thread)
    assert [json.loads(line)["vp_id"] for line in idle.stdout.splitlines()] == ["vp.general.primary"]
