"""Rollout evidence: the gates on constructed missions, and `vpctl rollout
snapshot` against a real dispatcher, passing and failing."""

from __future__ import annotations

import asyncio
import os
import json
from datetime import datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from services.cli.rollout_evidence import Gates, take_snapshot
from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_pb2
from tests.dispatcher.conftest import CODER, GENERAL, dispatch
from tests.support.processes import console_script
from tests.support.scripted_worker import ScriptedWorker
from tests.support.stack import running_stack

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def mission(i: int, *, state=S.MISSION_STATE_COMPLETED, decision=S.ROUTE_DECISION_DELEGATED, seconds=2.0):
    created, done = Timestamp(), Timestamp()
    created.FromDatetime(T0 + timedelta(minutes=i))
    done.FromDatetime(T0 + timedelta(minutes=i, seconds=seconds))
    return mission_pb2.Mission(state=state, created_at=created, completed_at=done,
                               route=mission_pb2.Route(decision=decision))


def test_gates_pass_on_a_clean_window():
    snap = take_snapshot(CODER, [mission(i, seconds=i + 1) for i in range(20)], window=20, gates=Gates())
    assert snap.passed and snap.missions_considered == 20 and snap.fallback_rate == 0.0
    assert snap.delegated_share == 1.0 and snap.p50_latency_seconds in (10.0, 11.0)
    assert snap.p95_latency_seconds == 19.0


def test_fallback_rate_gate_counts_only_the_last_window():
    old_fallbacks = [mission(i, decision=S.ROUTE_DECISION_FALLBACK, state=S.MISSION_STATE_FAILED) for i in range(10)]
    recent = [mission(100 + i) for i in range(18)] + [
        mission(200 + i, decision=S.ROUTE_DECISION_FALLBACK, state=S.MISSION_STATE_FAILED) for i in range(2)]
    assert take_snapshot(CODER, old_fallbacks + recent, window=20, gates=Gates()).passed  # 2/20 = 10%
    worse = recent + [mission(300, decision=S.ROUTE_DECISION_FALLBACK, state=S.MISSION_STATE_FAILED)]
    snap = take_snapshot(CODER, old_fallbacks + worse, window=20, gates=Gates())
    assert not snap.passed and not snap.gates["fallback_rate"]["passed"] and snap.fallback_rate == 0.15


def test_sustained_failures_gate():
    missions = [mission(i) for i in range(10)] + [mission(20 + i, state=S.MISSION_STATE_FAILED) for i in range(3)]
    snap = take_snapshot(CODER, missions, window=20, gates=Gates())
    assert snap.longest_failure_run == 3 and not snap.gates["no_sustained_failures"]["passed"]
    interleaved = [mission(i, state=S.MISSION_STATE_FAILED if i % 2 else S.MISSION_STATE_COMPLETED) for i in range(8)]
    assert take_snapshot(CODER, interleaved, window=20, gates=Gates()).gates["no_sustained_failures"]["passed"]


def test_a_few_missions_are_not_enough_evidence_by_default():
    few = take_snapshot(CODER, [mission(i) for i in range(4)], window=20, gates=Gates())
    assert Gates().min_missions == 20
    assert not few.passed and few.gates["enough_missions"] == {"passed": False, "value": 4, "limit": 20}
    assert take_snapshot(CODER, [mission(i) for i in range(4)], window=20, gates=Gates(min_missions=4)).passed


def test_empty_window_is_not_enough_evidence():
    snap = take_snapshot(CODER, [], window=20, gates=Gates())
    assert not snap.passed and snap.p95_latency_seconds is None
    assert "FAIL: enough_missions" in snap.markdown_row()


async def vpctl(address: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        console_script("vpctl"), "--dispatcher", address, "--json", "rollout", "snapshot", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await process.communicate()
    return process.returncode, out.decode() + err.decode()


async def test_vpctl_rollout_snapshot_against_real_dispatcher(sqlite_url, tmp_path):
    async with running_stack(sqlite_url) as stack:
        worker = ScriptedWorker(stack, CODER)
        await worker.connect()
        for _ in range(4):
            await dispatch(stack)
            worker.result(await worker.assignment())
            await worker.next("result_accepted")
        code, output = await vpctl(stack.dispatcher_address, "--vp-id", CODER, "--out", str(tmp_path),
                                   env=stack.client_env("operator"))
        assert code == 1 and "enough_missions" in output, output  # 4 of the default minimum 20
        code, output = await vpctl(stack.dispatcher_address, "--vp-id", CODER, "--out", str(tmp_path),
                                   "--min-missions", "4", env=stack.client_env("operator"))
        assert code == 0, output
        snapshot = json.loads(output.splitlines()[0])
        assert snapshot["missions_considered"] == 4 and snapshot["fallback_rate"] == 0.0 and snapshot["passed"]
        for _ in range(2):  # no general worker: every mission falls back to the caller
            await dispatch(stack, vp_id=GENERAL, mission_type="task")
        code, output = await vpctl(stack.dispatcher_address, "--vp-id", GENERAL, "--out", str(tmp_path),
                                   "--min-missions", "2", env=stack.client_env("operator"))
        assert code == 1, output
        assert json.loads(output.splitlines()[0])["fallback_rate"] == 1.0
        rows = (tmp_path / "evidence.md").read_text().splitlines()
        assert len(rows) == 5 and "FAIL: enough_missions" in rows[2] and "PASS" in rows[3]
        assert "FAIL: fallback_rate" in rows[4]
        assert len(list(tmp_path.glob("snapshot-*.json"))) == 3
        await worker.close()
