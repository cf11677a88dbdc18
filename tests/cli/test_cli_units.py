"""In-process pieces of vpctl and the client that need no subprocess."""

from __future__ import annotations

import io
import random

import grpc

from services.cli import exit_codes
from services.cli.commands import follow_mission
from services.cli.output import Output
from services.client import ClientError, RetryPolicy
from services.common.contracts.vp.v1 import enums_pb2 as enums
from services.common.errors import FieldViolation
from tests.support.fake_mission_control import invalid


async def test_follow_mission_prints_progress_and_returns_the_final_mission(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "x", labels={"fake.outcome": "completed"})
    out = io.StringIO()
    final = await follow_mission(mc, mission.envelope.mission_id, Output(False, out), timeout=10)
    assert final.state == enums.MISSION_STATE_COMPLETED
    text = out.getvalue()
    assert text.index("step 1/2") < text.index("step 2/2") < text.index("completed")


async def test_follow_mission_still_ends_when_the_progress_stream_is_broken(fake_server):
    mc = fake_server.mc
    fake_server.fake.fail_next("StreamMissionEvents", invalid("mission_id", "nope"))
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "x", labels={"fake.outcome": "failed"})
    out = io.StringIO()
    final = await follow_mission(mc, mission.envelope.mission_id, Output(False, out), timeout=10)
    assert final.state == enums.MISSION_STATE_FAILED
    assert exit_codes.for_mission(final) == exit_codes.NOT_COMPLETED


async def test_follow_mission_times_out_with_the_mission_still_running(fake_server):
    mc = fake_server.mc
    mission, _, _ = await mc.dispatch("vp.coder.primary", "code", "x", labels={"fake.outcome": "hang"})
    final = await follow_mission(mc, mission.envelope.mission_id, Output(True, io.StringIO()), timeout=0.4)
    assert final.state in (enums.MISSION_STATE_QUEUED, enums.MISSION_STATE_RUNNING)
    assert exit_codes.for_mission(final) == exit_codes.UNAVAILABLE


def test_status_code_mapping():
    assert exit_codes.for_status(grpc.StatusCode.INVALID_ARGUMENT) == 2
    assert exit_codes.for_status(grpc.StatusCode.NOT_FOUND) == 3
    assert exit_codes.for_status(grpc.StatusCode.ALREADY_EXISTS) == 4
    assert exit_codes.for_status(grpc.StatusCode.FAILED_PRECONDITION) == 4
    assert exit_codes.for_status(grpc.StatusCode.UNAVAILABLE) == 5
    assert exit_codes.for_status(grpc.StatusCode.DEADLINE_EXCEEDED) == 5
    assert exit_codes.for_status(grpc.StatusCode.INTERNAL) == 6


def test_client_error_summary_is_one_line():
    error = ClientError(grpc.StatusCode.INVALID_ARGUMENT, "bad envelope", reason="UNKNOWN_VP",
                        field_violations=[FieldViolation("envelope.vp_id", "no lane 'x'")])
    assert error.summary() == "INVALID_ARGUMENT UNKNOWN_VP: bad envelope [envelope.vp_id: no lane 'x']"
    same = ClientError(grpc.StatusCode.NOT_FOUND, "no mission", reason="NOT_FOUND")
    assert same.summary() == "NOT_FOUND: no mission"


def test_backoff_is_jittered_bounded_and_honours_retry_info():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, rng=random.Random(7))
    for failures in range(1, 10):
        ceiling = min(1.0, 0.1 * 2 ** (failures - 1))
        assert ceiling / 2 <= policy.backoff(failures) <= ceiling
    assert 2.0 <= policy.backoff(1, server_delay=2.0) <= 2.2
    assert policy.backoff(1, server_delay=999) <= policy.max_server_delay * 1.1
