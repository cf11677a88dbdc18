"""The event stream as a resume cursor, named consumers, and artifact reading
that never leaves the mission's artifact directory."""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest

from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from tests.dispatcher.conftest import CODER, GENERAL, dispatch
from tests.support.grpc_errors import reason_of


async def collect(stack, **request):
    stream = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(**request))
    return [reply.event async for reply in stream]


async def test_resume_from_any_cursor_has_no_gaps_or_duplicates(stack):
    for _ in range(12):
        await dispatch(stack, vp_id=GENERAL, mission_type="task")
    everything = await collect(stack)
    ids = [e.event_id for e in everything]
    assert ids == sorted(set(ids)) and len(ids) == 36  # dispatched, fallback, failed each
    for cut in (0, 1, 17, ids[-1]):
        resumed = [e.event_id for e in await collect(stack, after_event_id=cut)]
        assert resumed == [i for i in ids if i > cut]
    assert all(e.emitted_at.seconds > 0 for e in everything)


async def test_follow_delivers_new_events_in_order_across_reconnects(stack):
    received: list[int] = []

    async def follower(after):
        stream = stack.missions.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(after_event_id=after,
                                                                                     follow=True))
        async for reply in stream:
            received.append(reply.event.event_id)
            if len(received) % 9 == 0:
                stream.cancel()  # drop the stream every few events and resume from the cursor
                return

    for round_ in range(3):
        task = asyncio.create_task(follower(received[-1] if received else 0))
        for _ in range(3):
            await dispatch(stack, vp_id=GENERAL, mission_type="task")
        await asyncio.wait_for(task, 10)
    assert received == sorted(set(received)) and len(received) == 27
    assert received == [e.event_id for e in await collect(stack)]


async def test_named_consumer_resumes_from_stored_cursor(stack):
    for _ in range(4):
        await dispatch(stack, vp_id=GENERAL, mission_type="task")
    first = await collect(stack, consumer="bridge")
    await stack.missions.CommitEventCursor(mc_pb.CommitEventCursorRequest(consumer="bridge",
                                                                         event_id=first[5].event_id))
    rest = await collect(stack, consumer="bridge")
    assert [e.event_id for e in rest] == [e.event_id for e in first[6:]]
    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        await stack.missions.CommitEventCursor(mc_pb.CommitEventCursorRequest(consumer="bridge", event_id=10**9))
    assert beyond.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def completed_with_artifacts(stack, worker_factory, tmp_path):
    mission_dir = tmp_path / "missions" / "m1"
    (mission_dir / "sub").mkdir(parents=True)
    (mission_dir / "result.md").write_text("# result\n")
    (mission_dir / "sub" / "data.bin").write_bytes(os.urandom(200_000))
    (tmp_path / "secret.txt").write_text("outside")
    (mission_dir / "escape").symlink_to(tmp_path / "secret.txt")
    worker = await worker_factory(CODER, workspace_dir=str(tmp_path))
    await worker.connect()
    reply = await dispatch(stack)
    worker.result(await worker.assignment(), result_ref=mission_dir.as_uri())
    await worker.next("result_accepted")
    return reply.mission.envelope.mission_id, mission_dir


async def read(stack, mission_id, path=""):
    stream = stack.missions.ReadResultArtifacts(mc_pb.ReadResultArtifactsRequest(mission_id=mission_id, path=path))
    files: dict[str, bytes] = {}
    async for chunk in stream:
        files[chunk.path] = files.get(chunk.path, b"") + chunk.data
    return files


async def test_artifacts_stream_every_file_in_chunks(stack, worker_factory, tmp_path):
    mission_id, mission_dir = await completed_with_artifacts(stack, worker_factory, tmp_path)
    files = await read(stack, mission_id)
    assert set(files) == {"result.md", "sub/data.bin"}  # the symlink out is not followed
    assert files["sub/data.bin"] == (mission_dir / "sub" / "data.bin").read_bytes()
    assert await read(stack, mission_id, "result.md") == {"result.md": b"# result\n"}


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "escape", "sub/../../secret.txt"])
async def test_artifact_path_traversal_is_refused(stack, worker_factory, tmp_path, path):
    mission_id, _ = await completed_with_artifacts(stack, worker_factory, tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await read(stack, mission_id, path)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused.value) == "PATH_NOT_ALLOWED"


async def test_artifacts_of_mission_without_result(stack):
    reply = await dispatch(stack, vp_id=GENERAL, mission_type="task")
    with pytest.raises(grpc.aio.AioRpcError) as none:
        await read(stack, reply.mission.envelope.mission_id)
    assert none.value.code() == grpc.StatusCode.FAILED_PRECONDITION and reason_of(none.value) == "NO_ARTIFACTS"


async def test_result_ref_outside_the_session_workspace_is_not_recorded(stack, worker_factory, tmp_path):
    worker = await worker_factory(CODER, workspace_dir=str(tmp_path / "workspace"))
    await worker.connect()
    reply = await dispatch(stack)
    worker.result(await worker.assignment(), result_ref=(tmp_path / "elsewhere").as_uri())
    await worker.next("result_accepted")
    mission = (await stack.missions.GetMission(mc_pb.GetMissionRequest(
        mission_id=reply.mission.envelope.mission_id))).mission
    assert mission.result_ref == ""
    with pytest.raises(grpc.aio.AioRpcError) as none:
        await read(stack, reply.mission.envelope.mission_id)
    assert reason_of(none.value) == "NO_ARTIFACTS"
