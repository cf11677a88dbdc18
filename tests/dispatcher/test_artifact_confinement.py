"""ReadResultArtifacts serves only regular, singly linked files reached without
following a link: the hard-link attack and its relatives fail to do harm."""

from __future__ import annotations

import os

import grpc
import pytest

from tests.dispatcher.conftest import CODER, dispatch
from tests.dispatcher.test_events_and_artifacts import read
from tests.support.grpc_errors import details_of, reason_of


async def completed(stack, worker_factory, tmp_path):
    workspace = tmp_path / "ws"
    mission_dir = workspace / "missions" / "m1"
    (mission_dir / "sub").mkdir(parents=True)
    (mission_dir / "result.md").write_text("# result\n")
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host secret")
    os.link(secret, mission_dir / "linked.txt")            # a hard link to a file outside
    os.symlink(tmp_path, mission_dir / "sub" / "up")        # a directory symlink out
    os.mkfifo(mission_dir / "pipe")                         # a FIFO would block a naive reader
    worker = await worker_factory(CODER, workspace_dir=str(workspace))
    await worker.connect()
    reply = await dispatch(stack)
    worker.result(await worker.assignment(), result_ref=mission_dir.as_uri())
    await worker.next("result_accepted")
    return reply.mission.envelope.mission_id


async def test_listing_serves_only_regular_singly_linked_files(stack, worker_factory, tmp_path):
    mission_id = await completed(stack, worker_factory, tmp_path)
    files = await read(stack, mission_id)
    assert files == {"result.md": b"# result\n"}
    assert b"host secret" not in b"".join(files.values())


@pytest.mark.parametrize("path", ["linked.txt", "pipe", "sub/up/host-secret.txt", "sub"])
async def test_hard_link_symlink_fifo_and_directory_are_refused(stack, worker_factory, tmp_path, path):
    mission_id = await completed(stack, worker_factory, tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await read(stack, mission_id, path)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason_of(refused.value) == "PATH_NOT_ALLOWED"


@pytest.mark.parametrize("path", ["a\x00b", "n" * 256, "d/" * 600 + "f"])
async def test_nul_and_over_long_names_are_invalid_argument(stack, worker_factory, tmp_path, path):
    mission_id = await completed(stack, worker_factory, tmp_path)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await read(stack, mission_id, path)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ErrorInfo" in details_of(refused.value)
