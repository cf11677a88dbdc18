"""Event streams resume without gaps or duplicates; artifacts never land outside
the output directory."""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest

from services.client import ClientError


def _emit(fake, count: int, start: int = 0) -> None:
    for i in range(count):
        fake.emit("vp.mission.progress", f"m-{(start + i) % 2}", "vp.coder.primary", message=f"e{start + i}")


async def test_events_resume_after_drops_without_gaps_or_duplicates(fake_server):
    fake = fake_server.fake
    _emit(fake, 10)
    fake.drop_streams_after(3, 4)
    ids = [e.event_id async for e in fake_server.mc.events()]
    assert ids == list(range(1, 11))
    cursors = [r.after_event_id for r in fake.requests["StreamMissionEvents"]]
    assert cursors == [0, 3, 7]


async def test_events_never_duplicate_even_if_the_server_replays_the_cursor(fake_server):
    fake = fake_server.fake
    _emit(fake, 8)
    fake.replay_cursor_on_resume = True
    fake.drop_streams_after(2, 2, 2)
    ids = [e.event_id async for e in fake_server.mc.events(after_event_id=1)]
    assert ids == list(range(2, 9))


async def test_events_filters_and_consumer_cursor(fake_server):
    fake, mc = fake_server.fake, fake_server.mc
    _emit(fake, 6)
    assert [e.event_id async for e in mc.events(mission_id="m-1")] == [2, 4, 6]

    assert await mc.commit_cursor("ops", 4) == 4
    fake.drop_streams_after(1)
    # Consumer with no explicit cursor starts from its stored one; the resume sends the last id seen.
    assert [e.event_id async for e in mc.events(consumer="ops")] == [5, 6]
    requests = fake.requests["StreamMissionEvents"][-2:]
    assert [(r.consumer, r.after_event_id) for r in requests] == [("ops", 0), ("ops", 5)]


async def test_follow_survives_drops_and_stops_when_closed(fake_server):
    fake = fake_server.fake
    _emit(fake, 2)
    fake.drop_streams_after(3)

    async def producer():
        for i in range(2, 8):
            await asyncio.sleep(0.02)
            _emit(fake, 1, start=i)

    task = asyncio.create_task(producer())
    seen = []
    stream = fake_server.mc.events(follow=True)
    async for event in stream:
        seen.append(event.event_id)
        if len(seen) == 8:
            break
    await stream.aclose()
    await task
    assert seen == list(range(1, 9))
    assert all(r.follow for r in fake.requests["StreamMissionEvents"])


async def test_events_non_transient_error_is_raised(fake_server):
    from tests.support.fake_mission_control import invalid

    fake_server.fake.fail_next("StreamMissionEvents", invalid("event_types", "unknown type"))
    with pytest.raises(ClientError) as caught:
        [e async for e in fake_server.mc.events(event_types=["nope"])]
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.field_violations[0].field == "event_types"


async def _mission_with(fake_server, files):
    mission, _, _ = await fake_server.mc.dispatch("vp.coder.primary", "code", "art")
    mission_id = mission.envelope.mission_id
    fake_server.fake.artifacts[mission_id] = files
    return mission_id


async def test_read_artifacts_in_memory_and_to_a_directory(fake_server, tmp_path):
    files = [("result.md", b"hello world, in chunks"), ("sub/dir/data.bin", bytes(range(13))), ("empty", b"")]
    mission_id = await _mission_with(fake_server, files)
    mc = fake_server.mc

    assert await mc.read_artifacts(mission_id) == dict(files)
    assert await mc.read_artifacts(mission_id, "result.md") == {"result.md": b"hello world, in chunks"}
    listed = await mc.list_artifacts(mission_id)
    assert [(f.path, f.size) for f in listed] == [("result.md", 22), ("sub/dir/data.bin", 13), ("empty", 0)]

    out = tmp_path / "out"
    written = await mc.read_artifacts_to_dir(mission_id, out)
    assert [(f.path, f.size) for f in written] == [(p, len(d)) for p, d in files]
    for path, data in files:
        assert (out / path).read_bytes() == data
    assert not [p for p in out.rglob(".vpctl-part-*")], "no temporary files left"

    with pytest.raises(ClientError) as caught:
        await mc.read_artifacts(mission_id, "missing.txt")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("bad_path", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt", "..", "a\\..\\b"])
async def test_read_artifacts_to_dir_refuses_escaping_paths(fake_server, tmp_path, bad_path):
    mission_id = await _mission_with(fake_server, [("fine.txt", b"fine"), (bad_path, b"evil")])
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    with pytest.raises(ClientError) as caught:
        await fake_server.mc.read_artifacts_to_dir(mission_id, out)
    assert caught.value.reason == "PATH_NOT_ALLOWED"
    assert set(os.listdir(tmp_path)) == before | {"out"}
    assert not (tmp_path / "evil.txt").exists() and not os.path.exists("/tmp/evil-abs.txt")
    assert sorted(p.name for p in out.rglob("*")) == ["fine.txt"]
    with pytest.raises(ClientError):
        await fake_server.mc.read_artifacts(mission_id)


async def test_read_artifacts_to_dir_refuses_escape_through_a_symlink(fake_server, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(outside)
    mission_id = await _mission_with(fake_server, [("link/x.txt", b"evil")])
    with pytest.raises(ClientError) as caught:
        await fake_server.mc.read_artifacts_to_dir(mission_id, out)
    assert caught.value.reason == "PATH_NOT_ALLOWED"
    assert list(outside.iterdir()) == []


async def test_read_artifacts_retries_a_transient_failure(fake_server, tmp_path):
    from tests.support.fake_mission_control import unavailable

    mission_id = await _mission_with(fake_server, [("a.txt", b"abcdefghijkl")])
    fake_server.fake.fail_next("ReadResultArtifacts", unavailable(retry_delay=0.01))
    assert (await fake_server.mc.read_artifacts_to_dir(mission_id, tmp_path))[0].size == 12
    assert (tmp_path / "a.txt").read_bytes() == b"abcdefghijkl"
