"""A registry killed while a lane is live is a blip, not an outage: with the
registry process gone, a mission dispatched to a lane whose worker is connected
and heartbeating is still delegated and completes (before, it fell back to the
caller as FAILED); once a new registry answers on the same address, routing
reads it again."""

from __future__ import annotations


from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from tests.e2e.test_processes import CODER, dispatch, wait
from tests.support.e2e import E2EStack
from tests.support.processes import ServiceProcess, console_script
from tests.support.waiting import wait_until


def test_registry_killed_while_a_lane_is_live(sqlite_url, tmp_path):
    stack = E2EStack(sqlite_url, tmp_path, lease_ttl=10.0)
    (tmp_path / "handoff").mkdir()
    try:
        stack.start_registry()
        stack.start_dispatcher()
        stack.start_worker(CODER, executor="noop")
        channel, stub = stack.missions()
        first = dispatch(stub, CODER, "code", "before the blip")
        assert wait(stub, first.mission.envelope.mission_id).state == S.MISSION_STATE_COMPLETED

        stack.registry.kill()  # SIGKILL: no drain, no goodbye
        # The dispatcher has found the registry unreachable (its cached view is gone).
        stack.dispatcher.wait_for_line("registry unreachable", timeout=30)
        during = dispatch(stub, CODER, "code", "during the blip")
        assert during.route.decision == S.ROUTE_DECISION_DELEGATED, during.route
        assert wait(stub, during.mission.envelope.mission_id).state == S.MISSION_STATE_COMPLETED

        stack.registry = ServiceProcess([
            console_script("vp-registry"), "--listen", stack.registry_address, "--db", stack.db_url,
            "--lease-ttl", "10", "--sweep-interval", "0.5", "--workspace-root", str(stack.root / "workspaces"),
            *stack.server_args()])
        stack.registry.address()

        def delegated_after_restart() -> bool:
            reply = dispatch(stub, CODER, "code", "after the blip")
            return reply.route.decision == S.ROUTE_DECISION_DELEGATED

        wait_until(delegated_after_restart, timeout=30, interval=0.5, what="routing on the restarted registry")
        health = stub.GetMission(mc_pb.GetMissionRequest(mission_id=during.mission.envelope.mission_id), timeout=10)
        assert health.mission.state == S.MISSION_STATE_COMPLETED
        assert "Traceback" not in stack.dispatcher.output
        channel.close()
    finally:
        stack.stop()
