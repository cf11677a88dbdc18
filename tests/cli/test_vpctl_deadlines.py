"""vpctl against a server that never answers (a socket that listens but never
accepts): --timeout bounds every command, streams and waits included, as one
overall deadline across retries; before, unary commands took ~16 s (one deadline
per retry) and events / artifacts / wait took five minutes."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time

import pytest

from tests.cli.test_vpctl import VPCTL, vpctl

COMMANDS = {
    "get": ["get", "m-1"],
    "list": ["list"],
    "cancel": ["cancel", "m-1"],
    "events": ["events"],
    "events --follow": ["events", "--follow"],
    "artifacts": ["artifacts", "m-1"],
    "wait": ["wait", "m-1"],
    "dispatch --wait": ["dispatch", "--vp-id", "vp.coder.primary", "--type", "code", "--objective", "o", "--wait"],
}


@pytest.fixture
def black_hole():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_timeout_bounds_every_command_against_a_server_that_never_answers(black_hole):
    started = time.monotonic()
    running = {name: subprocess.Popen([str(VPCTL), "--dispatcher", black_hole, "--timeout", "1", "--json", *argv],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, argv in COMMANDS.items()}
    results = {}
    try:
        for name, process in running.items():
            # Generous against a loaded machine; without the overall deadline
            # these take from 16 s (unary) to five minutes (streams, waits).
            out, err = process.communicate(timeout=max(1.0, 45 - (time.monotonic() - started)))
            results[name] = (process.returncode, err)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name, (code, err) in results.items():
        assert code == 5, (name, code, err)
        error = json.loads(err.strip().splitlines()[-1])
        assert error["code"] in ("DEADLINE_EXCEEDED", "UNAVAILABLE") and error["message"], (name, error)


def test_json_errors_are_objects_with_code_reason_and_message(fake_thread):
    result = vpctl("--json", "get", "m-missing", server=fake_thread)
    assert result.returncode == 3
    error = json.loads(result.stderr)
    assert error["code"] == "NOT_FOUND" and error["reason"] == "MISSION_NOT_FOUND" and "m-missing" in error["message"]
    usage = vpctl("get", "--json")
    assert usage.returncode == 2
    assert json.loads(usage.stderr) == {"code": "INVALID_ARGUMENT", "reason": "USAGE", "message": usage_message(usage)}
    bad = vpctl("--json", "list", "--state", "sleeping", server=fake_thread)
    assert bad.returncode == 2 and json.loads(bad.stderr)["code"] == "INVALID_ARGUMENT"
    # Without --json the same errors stay one human line.
    assert vpctl("get", "m-missing", server=fake_thread).stderr.startswith("vpctl: NOT_FOUND")


def usage_message(result) -> str:
    message = json.loads(result.stderr)["message"]
    assert message.startswith("vpctl get: ") and "MISSION_ID" in message
    return message


def test_help_prints_each_default_once():
    twice = re.compile(r"default[:\s][^()]*\)?\s*\(default:")
    for command in ("up", "dispatch", "wait", "list", "events", "rollout"):
        text = " ".join(vpctl(command, "--help").stdout.split())
        assert not twice.search(text), (command, twice.search(text).group(0))
        assert "(default: None)" not in text and "(default: False)" not in text, text
    assert "[env: VP_METRICS_BASE_PORT] (default: 9101)" in " ".join(vpctl("up", "--help").stdout.split())
