"""A VP's agent never outlives its lease: every service a real process, real
signals (kill -9, SIGSTOP/SIGCONT, SIGTERM), an agent that only writes to a
side-effect file and leaves a setsid() grandchild behind, and a proxy that
drops what the dispatcher sends. Waits are bounded polls on the condition.

Measured times (kill -> requeue, SIGSTOP -> requeue, drain timeout -> requeue)
are printed (pytest -s shows them); bench/fault_timings.py reports them."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from services.common.contracts.vp.v1 import enums_pb2 as S
from services.common.contracts.vp.v1 import mission_control_service_pb2 as mc_pb
from services.common.contracts.vp.v1 import mission_pb2
from services.common.contracts.vp.v1 import session_registry_service_pb2 as reg_pb
from services.common.contracts.vp.v1 import session_registry_service_pb2_grpc as reg_grpc
from services.worker.containment.cgroups import CgroupTree
from services.worker.containment.procs import new_run_token
from tests.support.e2e import E2EStack
from tests.support.processes import ServiceProcess, console_script
from tests.support.proxy import DroppingProxy
from tests.support.waiting import wait_until

LANE = "vp.coder.primary"
AGENT = Path(__file__).with_name("side_effect_agent.py")
TTL = 4.0


@dataclass
class Line:
    at: float
    tag: str
    attempt: int
    role: str
    pid: int
    what: str


def side_lines(path: Path) -> list[Line]:
    if not path.exists():
        return []
    out = []
    for raw in path.read_text().splitlines():
        parts = raw.split()
        if len(parts) == 6:
            out.append(Line(float(parts[0]), parts[1], int(parts[2].split("=")[1]), parts[3], int(parts[4]), parts[5]))
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def pids_of(lines: list[Line], **match) -> set[int]:
    return {line.pid for line in lines if all(getattr(line, k) == v for k, v in match.items())}


def assert_not_interleaved(lines: list[Line], first, second) -> None:
    """Every line of the first run comes before every line of the second."""
    a = [line.at for line in lines if first(line)]
    b = [line.at for line in lines if second(line)]
    assert a and b, (len(a), len(b))
    assert max(a) < min(b), f"the two runs overlapped: first ended {max(a):.3f}, second began {min(b):.3f}"


class Fault:
    def __init__(self, db_url: str, root: Path) -> None:
        self.stack = E2EStack(db_url, root, lease_ttl=TTL)
        (root / "handoff").mkdir()
        self.root = root
        self.side = root / "side.log"
        self.extra: list[ServiceProcess] = []
        self.stack.start_registry()
        self.stack.start_dispatcher()
        self.channel, self.stub = self.stack.missions()
        self.registry_channel = self.stack.channel_security("operator").channel(self.stack.registry_address)
        self.sessions = reg_grpc.SessionRegistryStub(self.registry_channel)

    def agent_command(self, tag: str, seconds: float, later: float | None = None) -> str:
        return f"{sys.executable} {AGENT} {self.side} {tag} {seconds}" + (f" {later}" if later is not None else "")

    def worker_argv(self, command: str, *extra: str, dispatcher: str | None = None) -> list[str]:
        return [console_script("vp-worker"), "--dispatcher", dispatcher or self.stack.dispatcher_address,
                "--registry", self.stack.registry_address, "--vp-id", LANE, "--workspace-root",
                str(self.root / "workspaces"), "--executor", "subprocess", "--lease-ttl", str(TTL),
                "--command", command, *self.stack.worker_args(LANE), *extra]

    def start_worker(self, command: str, *extra: str, dispatcher: str | None = None,
                     connected: bool = True) -> ServiceProcess:
        worker = ServiceProcess(self.worker_argv(command, *extra, dispatcher=dispatcher))
        self.extra.append(worker)
        if connected:
            worker.wait_for_line(r"connected to", timeout=30)
        return worker

    def dispatch(self) -> str:
        reply = self.stub.DispatchMission(mc_pb.DispatchMissionRequest(envelope=mission_pb2.MissionEnvelope(
            vp_id=LANE, mission_type="code", objective="act on the outside world")), timeout=10)
        return reply.mission.envelope.mission_id

    def wait(self, mission_id: str, seconds: float = 90) -> mission_pb2.Mission:
        return self.stub.WaitMission(mc_pb.WaitMissionRequest(mission_id=mission_id, timeout=Duration(
            seconds=int(seconds))), timeout=seconds + 5).mission

    def events(self, mission_id: str) -> list:
        return [r.event for r in self.stub.StreamMissionEvents(
            mc_pb.StreamMissionEventsRequest(mission_id=mission_id), timeout=10)]

    def requeued(self, mission_id: str) -> list:
        return [e for e in self.events(mission_id) if e.event_type == "vp.mission.requeued"]

    def session(self):
        return self.sessions.GetSession(reg_pb.GetSessionRequest(vp_id=LANE), timeout=5).session

    def running_agents(self, **match) -> set[int]:
        lines = side_lines(self.side)
        return {pid for pid in pids_of(lines, **match) if alive(pid)}

    def wait_agents_started(self, **match) -> set[int]:
        def both_roles():
            lines = side_lines(self.side)
            return pids_of(lines, role="agent", **match) and pids_of(lines, role="grandchild", **match)

        wait_until(both_roles, timeout=30, what="the agent and its escaped grandchild to write")
        return pids_of(side_lines(self.side), **match)

    def close(self) -> None:
        for process in self.extra:
            if process.proc.poll() is None:
                try:
                    process.proc.send_signal(signal.SIGCONT)
                except ProcessLookupError:
                    pass
            process.kill()
        self.channel.close()
        self.registry_channel.close()
        self.stack.stop()
        for pid in pids_of(side_lines(self.side)):  # never leave an agent behind, whatever failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def fault(db_url, tmp_path):
    f = Fault(db_url, tmp_path)
    yield f
    f.close()


def report(what: str, seconds: float) -> None:
    print(f"\n[measured] {what}: {seconds:.3f}s")


@pytest.mark.parametrize("containment", ["tokens", "cgroup"])
def test_kill_9_of_the_worker_kills_agent_and_escaped_grandchild_before_attempt_2(fault, containment):
    if containment == "cgroup":
        probe = CgroupTree.create(new_run_token())
        if probe is None:
            pytest.skip("no writable cgroup v2 hierarchy here")
        probe.close()
    worker = fault.start_worker(fault.agent_command("first", 120), "--containment", containment)
    if containment == "cgroup":
        worker.wait_for_line(r"agent containment: a cgroup per run", timeout=10)
    mission_id = fault.dispatch()
    first = fault.wait_agents_started(tag="first")
    killed_at = time.time()
    worker.kill()
    # Nobody restarted anything yet: parent-death signal and the watchdog do it.
    wait_until(lambda: not any(alive(pid) for pid in first), timeout=15,
               what="the agent and its escaped grandchild to die with their worker")
    [requeue] = wait_until(lambda: fault.requeued(mission_id), timeout=30, what="the mission re-queued")
    report("kill -9 -> requeue", requeue.emitted_at.ToDatetime().timestamp() - killed_at)

    fault.start_worker(fault.agent_command("second", 0.3))
    done = fault.wait(mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED and done.attempt == 2, done
    lines = side_lines(fault.side)
    assert_not_interleaved(lines, lambda l: l.tag == "first", lambda l: l.tag == "second")
    assert [e.event_type for e in fault.events(mission_id)].count("vp.mission.completed") == 1


def _freeze_until_requeued(fault, worker, mission_id):
    first = fault.wait_agents_started(attempt=1)
    epoch = fault.session().lease_epoch
    worker.proc.send_signal(signal.SIGSTOP)
    stopped_at = time.time()
    [requeue] = wait_until(lambda: fault.requeued(mission_id), timeout=30, what="the mission re-queued")
    report("SIGSTOP -> requeue", requeue.emitted_at.ToDatetime().timestamp() - stopped_at)
    assert worker.proc.poll() is None  # still frozen: its TCP connection never dropped
    # The frozen worker's watchdog stopped its agents when its lease ran out.
    wait_until(lambda: not any(alive(pid) for pid in first), timeout=15,
               what="the frozen worker's agents to be killed by its watchdog")
    return epoch


def test_sigstop_past_the_ttl_requeues_and_the_woken_worker_acts_on_no_old_epoch(fault):
    worker = fault.start_worker(fault.agent_command("solo", 120, 0.3))
    mission_id = fault.dispatch()
    epoch = _freeze_until_requeued(fault, worker, mission_id)
    # The dispatcher ended the stream because it went silent, not because TCP broke.
    fault.stack.dispatcher.wait_for_line(r"renewed nothing for", timeout=10)
    worker.proc.send_signal(signal.SIGCONT)
    worker.wait_for_line(r"lapsed|lease term epoch \d+ is over", timeout=20)
    done = fault.wait(mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED and done.attempt == 2, done
    events = fault.events(mission_id)
    assert [e.event_type for e in events].count("vp.mission.completed") == 1
    started = [e for e in events if e.event_type == "vp.mission.started"]
    assert [int(e.payload["lease_epoch"]) for e in started] == [epoch, epoch + 1]
    assert_not_interleaved(side_lines(fault.side), lambda l: l.attempt == 1, lambda l: l.attempt == 2)


def test_sigstop_with_a_standby_taking_over_never_runs_two_agents_at_once(fault):
    frozen = fault.start_worker(fault.agent_command("frozen", 120))
    standby = fault.start_worker(fault.agent_command("standby", 0.3), connected=False)
    mission_id = fault.dispatch()
    epoch = _freeze_until_requeued(fault, frozen, mission_id)
    standby.wait_for_line(r"connected to", timeout=30)
    done = fault.wait(mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED and done.attempt == 2, done
    frozen.proc.send_signal(signal.SIGCONT)
    frozen.wait_for_line(r"lapsed|lease term epoch \d+ is over", timeout=20)
    assert fault.session().lease_epoch == epoch + 1 and fault.session().lease_owner != ""
    lines = side_lines(fault.side)
    assert_not_interleaved(lines, lambda l: l.tag == "frozen", lambda l: l.tag == "standby")
    assert not fault.running_agents(tag="frozen")
    events = fault.events(mission_id)
    assert [e.event_type for e in events].count("vp.mission.completed") == 1


def test_dropped_renewal_confirmations_stop_the_run_before_anyone_requeues_it(fault):
    proxy = DroppingProxy(fault.stack.dispatcher_address)
    try:
        worker = fault.start_worker(fault.agent_command("unconfirmed", 120, 0.3), dispatcher=proxy.address)
        mission_id = fault.dispatch()
        first = fault.wait_agents_started(attempt=1)
        dropped_at = time.time()
        proxy.drop_downstream.set()  # heartbeats still arrive and renew; no confirmation comes back
        wait_until(lambda: not any(alive(pid) for pid in first), timeout=20,
                   what="the worker to stop its run at its trust deadline")
        stopped = [l for l in side_lines(fault.side) if l.what == "sigterm" and l.attempt == 1]
        assert stopped, "the agent was not stopped with SIGTERM by its worker"
        report("renewal confirmations dropped -> run stopped by the worker", max(l.at for l in stopped) - dropped_at)
        worker.wait_for_line(r"lapsed", timeout=10)
        [requeue] = wait_until(lambda: fault.requeued(mission_id), timeout=30, what="the mission re-queued")
        # The worker stopped acting first: nobody could have started attempt 2 before.
        assert max(l.at for l in side_lines(fault.side) if l.attempt == 1) < requeue.emitted_at.ToDatetime().timestamp()
    finally:
        proxy.close()


def test_sigterm_drain_hands_the_mission_back_without_using_an_attempt(fault):
    draining = fault.start_worker(fault.agent_command("draining", 120), "--drain-timeout", "1")
    standby = fault.start_worker(fault.agent_command("standby", 0.3), connected=False)
    mission_id = fault.dispatch()
    fault.wait_agents_started(tag="draining")
    terminated_at = time.time()
    draining.proc.send_signal(signal.SIGTERM)
    [requeue] = wait_until(lambda: fault.requeued(mission_id), timeout=30, what="the mission handed back")
    report("drain timeout -> requeue", requeue.emitted_at.ToDatetime().timestamp() - (terminated_at + 1.0))
    assert requeue.payload["reason"] == "handed_back:DRAINING", draining.output + fault.side.read_text()[-800:]
    assert draining.proc.wait(30) == 0
    standby.wait_for_line(r"connected to", timeout=30)
    done = fault.wait(mission_id)
    assert done.state == S.MISSION_STATE_COMPLETED and done.attempt == 1, done
    lines = side_lines(fault.side)
    assert_not_interleaved(lines, lambda l: l.tag == "draining", lambda l: l.tag == "standby")
    assert [e.event_type for e in fault.events(mission_id)].count("vp.mission.completed") == 1
