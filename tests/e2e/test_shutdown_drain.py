"""Graceful shutdown with a drain window, on real processes: after SIGTERM the
dispatcher reports NOT_SERVING for --drain-window seconds while its port is
still open (a health poller sees it), then a WaitMission in flight ends with
UNAVAILABLE + ErrorInfo DRAINING + RetryInfo instead of a bare "Cancelling all
calls", and a client waiting on the mission retries and gets its answer from the
restarted dispatcher."""

from __future__ import annotations

import json
import sys
import threading
import time

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.client import SyncMissionControlClient
from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.errors import detail_of
from tests.e2e.test_processes import CODER, dispatch
from tests.support.waiting import wait_until

DRAIN_WINDOW = 3.0


class HealthPoller(threading.Thread):
    """What a load balancer's readiness probe sees: (monotonic time, status or error code)."""

    def __init__(self, address: str, security) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.security = security
        self.seen: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with self.security.channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while not self.stop.is_set():
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(service="vp.v1.MissionControl"), timeout=1)
                    seen = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.RpcError as error:
                    seen = error.code().name
                self.seen.append((time.monotonic(), seen))
                self.stop.wait(0.05)

    def first(self, status: str) -> float | None:
        return next((when for when, seen in self.seen if seen == status), None)


def test_drain_window_then_draining_error_then_the_client_retries(e2e, tmp_path):
    release = tmp_path / "release"
    command = json.dumps([sys.executable, "-c", "import os, sys, time\nwhile not os.path.exists(sys.argv[1]): "
                          "time.sleep(0.05)", str(release)])
    e2e.dispatcher.kill()  # restart it with a drain window
    e2e.start_dispatcher("--drain-window", str(DRAIN_WINDOW))
    e2e.start_worker(CODER, "--command", command, executor="subprocess")
    channel, stub = e2e.missions()
    mission_id = dispatch(stub, CODER, "code", "block until released").mission.envelope.mission_id
    wait_until(lambda: stub.GetMission(mc_pb.GetMissionRequest(mission_id=mission_id), timeout=5).mission.state
               == S.MISSION_STATE_RUNNING, timeout=30, what="the mission to run")

    # A raw WaitMission in flight (started before the signal; one arriving during
    # the window is served and drained the same way), and a client wait that
    # retries across the restart.
    raw_call = stub.WaitMission.future(
        mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=Duration(seconds=120)), timeout=130)
    raw: dict = {}
    raw_call.add_done_callback(lambda call: raw.setdefault("at", time.monotonic()))
    client_result: dict = {}

    def client_wait() -> None:
        with SyncMissionControlClient(e2e.dispatcher_address, timeout=60,
                                      security=e2e.channel_security("client")) as client:
            try:
                client_result["mission"] = client.wait(mission_id, 120)
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                client_result["error"] = error

    followed: list[str] = []
    followed_ids: list[int] = []

    def client_follow() -> None:
        # A followed event stream is a long call too: drained, then reopened after its cursor.
        with SyncMissionControlClient(e2e.dispatcher_address, timeout=60,
                                      security=e2e.channel_security("client")) as client:
            try:
                for event in client.events(mission_id=mission_id, follow=True):
                    followed.append(event.event_type)
                    followed_ids.append(event.event_id)
                    if event.event_type == "vp.mission.completed":
                        return
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                followed.append(f"error: {error!r}")

    waiter = threading.Thread(target=client_wait, daemon=True)
    waiter.start()
    follower = threading.Thread(target=client_follow, daemon=True)
    follower.start()
    wait_until(lambda: "vp.mission.started" in followed, timeout=30, what="the follower to catch up")
    poller = HealthPoller(e2e.dispatcher_address, e2e.channel_security("operator"))
    poller.start()
    wait_until(lambda: poller.first("SERVING"), timeout=10, what="the poller to see SERVING")

    signalled = time.monotonic()
    assert e2e.dispatcher.terminate(timeout=60) == 0, e2e.dispatcher.output
    error = raw_call.exception(timeout=30)

    # The poller saw NOT_SERVING on the still-open port before the long call ended.
    not_serving = poller.first("NOT_SERVING")
    assert not_serving is not None, poller.seen
    assert signalled <= not_serving < raw["at"], (poller.seen, raw)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    info = detail_of(error, error_details_pb2.ErrorInfo)
    retry = detail_of(error, error_details_pb2.RetryInfo)
    assert info is not None and info.reason == "DRAINING", error
    assert retry is not None and retry.retry_delay.ToTimedelta().total_seconds() > 0, error
    # The listener closed only after the window: probes then fail to connect.
    wait_until(lambda: poller.seen[-1][1] == "UNAVAILABLE", timeout=30, what="the port to close")
    poller.stop.set()
    poller.join(5)

    # Restarted on the same port and database: the client's wait, retrying all
    # along, gets the mission once it completes.
    e2e.start_dispatcher()
    release.write_text("go")
    waiter.join(90)
    assert "error" not in client_result, client_result
    assert client_result["mission"].state == S.MISSION_STATE_COMPLETED, client_result
    follower.join(60)
    assert followed[-1] == "vp.mission.completed", followed
    assert followed_ids == sorted(set(followed_ids)), followed_ids  # reopened after its cursor: no repeat
    channel.close()

