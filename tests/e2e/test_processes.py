"""End to end with every service as a real process: both lanes complete with
artifacts, cancel reaches a subprocess, and kill -9 of a worker or of the
dispatcher loses nothing and completes nothing twice."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from tests.support.e2e import E2EStack
from tests.support.waiting import wait_until

CODER, GENERAL = "vp.coder.primary", "vp.general.primary"


def dispatch(stub, vp_id, mission_type, objective, **fields):
    return stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
        vp_id=vp_id, mission_type=mission_type, objective=objective, **fields)), timeout=10)


def wait(stub, mission_id, seconds=60):
    return stub.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=Duration(seconds=seconds)),
                            timeout=seconds + 5).mission


def events(stub, mission_id):
    return [r.event for r in stub.StreamMissionEvents(mc_pb.StreamMissionEventsRequest(mission_id=mission_id),
                                                       timeout=10)]


def run_both_lanes(stack: E2EStack):
    stack.start_worker(CODER)
    stack.start_worker(GENERAL)
    channel, stub = stack.missions()
    target = stack.root / "handoff" / "poem.md"
    coder = dispatch(stub, CODER, "code", "write hello.py", target_path=str(target))
    general = dispatch(stub, GENERAL, "task", "write a short poem")
    for reply, vp_id in ((coder, CODER), (general, GENERAL)):
        mission_id = reply.mission.envelope.mission_id
        done = wait(stub, mission_id)
        assert done.state == S.MISSION_STATE_COMPLETED, done
        mission_dir = Path(urlparse(done.result_ref).path)
        assert (mission_dir / "mission_receipt.json").exists() and (mission_dir / "sync_ready.json").exists()
        assert str(mission_dir).startswith(str(stack.root / "workspaces" / vp_id))
        files = {c.path for c in stub.ReadResultArtifacts(mc_pb.ReadResultArtifactsRequest(mission_id=mission_id),
                                                          timeout=10)}
        assert {"mission_receipt.json", "sync_ready.json"} <= files
        seqs = [e.payload["seq"] for e in events(stub, mission_id) if e.event_type == "vp.mission.progress"]
        assert seqs == sorted(seqs) and len(seqs) >= 3
    assert target.exists()
    channel.close()


def test_both_lanes_complete_with_artifacts(e2e):
    run_both_lanes(e2e)


@pytest.mark.postgres
def test_both_lanes_complete_on_postgres(db_url, tmp_path):
    if not db_url.startswith("postgresql"):
        pytest.skip("the SQLite variant is test_both_lanes_complete_with_artifacts")
    stack = E2EStack(db_url, tmp_path)
    (tmp_path / "handoff").mkdir()
    try:
        stack.start_registry()
        stack.start_dispatcher()
        run_both_lanes(stack)
    finally:
        stack.stop()


SLOW_CHILD = """
import os, sys, time, pathlib
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
print("started", flush=True)
time.sleep(120)
"""


def test_cancel_reaches_running_subprocess(e2e, tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_CHILD)
    pid_file = tmp_path / "child.pid"
    e2e.start_worker(CODER, "--command", f"{sys.executable} {script} {pid_file}", executor="subprocess")
    channel, stub = e2e.missions()
    reply = dispatch(stub, CODER, "code", "sleep for a long time")
    mission_id = reply.mission.envelope.mission_id
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=20))
    stub.CancelMission(mc_pb.CancelMissionRequest(mission_id=mission_id, reason="operator"), timeout=10)
    done = wait(stub, mission_id)
    assert done.state == S.MISSION_STATE_CANCELLED

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return Path(f"/proc/{pid}/status").exists() and "zombie" in Path(f"/proc/{pid}/status").read_text()

    wait_until(gone, timeout=10, what="the cancelled subprocess to exit")
    channel.close()


def test_worker_killed_mid_mission_completes_once_on_restart(e2e, tmp_path):
    script = tmp_path / "step.py"
    marker = tmp_path / "runs.log"
    script.write_text(f"""
import sys, time, pathlib
with open({str(marker)!r}, "a") as f:
    f.write("run\\n")
print("working", flush=True)
time.sleep(float(sys.argv[1]))
print("done", flush=True)
""")
    worker = e2e.start_worker(CODER, "--command", f"{sys.executable} {script} 30", executor="subprocess")
    channel, stub = e2e.missions()
    reply = dispatch(stub, CODER, "code", "long job")
    mission_id = reply.mission.envelope.mission_id
    wait_until(lambda: marker.exists(), timeout=20, what="the first run to start")
    worker.kill()
    e2e.start_worker(CODER, "--command", f"{sys.executable} {script} 0.2", executor="subprocess")
    done = wait(stub, mission_id, seconds=60)
    assert done.state == S.MISSION_STATE_COMPLETED and done.attempt == 2
    kinds = [e.event_type for e in events(stub, mission_id)]
    assert kinds.count("vp.mission.completed") == 1 and "vp.mission.requeued" in kinds
    assert marker.read_text().count("run") == 2
    channel.close()


def test_dispatcher_killed_and_restarted_mid_flight_loses_nothing(e2e):
    e2e.start_worker(GENERAL, "--capacity", "2")
    channel, stub = e2e.missions()
    ids = [dispatch(stub, GENERAL, "task", f"poem {i}", idempotency_key=f"k{i}").mission.envelope.mission_id
           for i in range(6)]
    e2e.dispatcher.kill()
    e2e.start_dispatcher()
    channel.close()
    channel, stub = e2e.missions()
    # Replaying a dispatch after the crash returns the same mission, not a new one.
    assert dispatch(stub, GENERAL, "task", "poem 0", idempotency_key="k0").mission.envelope.mission_id == ids[0]
    for mission_id in ids:
        done = wait(stub, mission_id)
        assert done.state == S.MISSION_STATE_COMPLETED, done
        kinds = [e.event_type for e in events(stub, mission_id)]
        assert kinds.count("vp.mission.completed") == 1
    listed = stub.ListMissions(mc_pb.ListMissionsRequest(page_size=100), timeout=10)
    assert len(listed.missions) == 6
    channel.close()
