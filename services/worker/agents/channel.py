"""The protocol channel of one run (specs/agent-protocol-v1.md §2, §4.1).

ChannelHooks plug into SubprocessExecutor (its ``hooks`` factory): they open a
pipe whose write end the agent inherits as VP_AGENT_EVENTS_FD, write
agent_context.json, read the pipe line by line into an AgentRunState, and turn
the process result into the run's result. An adapter (claude-code, codex)
subclasses them to read the CLI's stdout instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os

from services.worker.agents import vp_agent
from services.worker.agents.run_state import AgentRunState
from services.worker.agents.usage import BudgetLimits, UsageTotals
from services.worker.executors.base import ExecutionResult, MissionRun, ProgressSink

log = logging.getLogger(__name__)

CONTEXT_FILE = "agent_context.json"
#: Once the process group is gone, how long the channel may still take to reach EOF
#: (a process that escaped the group may hold the write end).
DRAIN_TIMEOUT = 2.0


def agent_context(run: MissionRun, limits: BudgetLimits, usage_before: UsageTotals) -> dict:
    mission = run.mission
    answer = mission.answer if mission is not None and mission.answer else None
    question = None
    if answer is not None and mission is not None and mission.HasField("input_request"):
        question = mission.input_request.question or None
    return {
        "schema": "vp.agent_context.v1",
        "protocol": vp_agent.VERSION,
        "mission_id": run.mission_id,
        "attempt": run.attempt,
        "run_id": run.run_id,
        "objective": run.envelope.objective,
        "answer": answer,
        "question": question,
        "conversation_id": run.conversation_id or None,
        "budget": {"max_tokens": limits.max_tokens, "max_cost_usd": limits.max_cost_usd},
        "usage_before": usage_before.to_dict(),
    }


class ChannelHooks:
    """Protocol v1 over an inherited pipe, for any subprocess agent."""

    #: The preset name recorded with conversation ids.
    agent = "subprocess"
    #: A missing result is AGENT_NO_RESULT even if the agent said nothing else.
    strict = False
    #: Whether the agent gets the events pipe.
    use_channel = True

    def __init__(self, run: MissionRun, progress: ProgressSink, *, stop_grace: float) -> None:
        self.run = run
        self.limits = BudgetLimits.for_mission(run.mission, run.envelope)
        self.usage_before = UsageTotals.from_proto(run.mission.usage if run.mission is not None else None)
        self.state = AgentRunState(agent=self.agent, progress=progress, mission_dir=run.mission_dir,
                                   limits=self.limits, usage_before=self.usage_before, stop_grace=stop_grace,
                                   strict=self.strict, mission_id=run.mission_id)
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        self._reader: asyncio.Task | None = None

    @property
    def stop(self) -> asyncio.Event:
        return self.state.stop

    @property
    def answer(self) -> str:
        return self.run.mission.answer if self.run.mission is not None else ""

    # -- SubprocessExecutor hook interface ------------------------------------

    def prepare(self, argv: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str], tuple[int, ...]]:
        context_file = self.run.mission_dir / CONTEXT_FILE
        context_file.write_text(json.dumps(agent_context(self.run, self.limits, self.usage_before), indent=2) + "\n",
                                encoding="utf-8")
        env = dict(env)
        env[vp_agent.PROTOCOL_ENV] = str(vp_agent.VERSION)
        env[vp_agent.CONTEXT_FILE_ENV] = str(context_file)
        for name, value in ((vp_agent.ANSWER_ENV, self.answer), (vp_agent.CONVERSATION_ENV, self.run.conversation_id)):
            if value:
                env[name] = value
            else:
                env.pop(name, None)
        fds: tuple[int, ...] = ()
        if self.use_channel:
            self._read_fd, self._write_fd = os.pipe()
            os.set_inheritable(self._write_fd, True)
            env[vp_agent.EVENTS_FD_ENV] = str(self._write_fd)
            fds = (self._write_fd,)
        else:
            env.pop(vp_agent.EVENTS_FD_ENV, None)
        return self.command(argv), env, fds

    def command(self, argv: list[str]) -> list[str]:
        return argv

    def stdin(self, default: bytes) -> bytes:
        """What the agent reads on stdin: the envelope, as for any subprocess."""
        return default

    def started(self) -> None:
        """The child has its copy of the write end: close ours so EOF comes when the agent is gone."""
        self._close_write()
        if self._read_fd is not None:
            fd, self._read_fd = self._read_fd, None
            self._reader = asyncio.ensure_future(self._read_channel(fd))

    async def stdout_line(self, line: str, payload: dict) -> bool:
        """False: the line is plain progress text, as for any subprocess."""
        return False

    async def finish(self, result: ExecutionResult) -> ExecutionResult:
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), DRAIN_TIMEOUT)
            except asyncio.TimeoutError:
                log.warning("mission %s: the protocol channel is still open after the agent ended",
                            self.run.mission_id)
                self._reader.cancel()
        self.abort()
        self.before_outcome()
        return self.state.outcome(result)

    def before_outcome(self) -> None:
        """Adapters turn what they saw on stdout into a result here."""

    def abort(self) -> None:
        self._close_write()
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None
        self.state.close()

    def _close_write(self) -> None:
        if self._write_fd is not None:
            os.close(self._write_fd)
            self._write_fd = None

    # -- reading the channel --------------------------------------------------

    async def _read_channel(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=vp_agent.MAX_LINE_BYTES * 2)
        pipe = os.fdopen(fd, "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
        # Imported here: subprocess_executor is the owner of line splitting.
        from services.worker.executors.subprocess_executor import read_lines
        try:
            async for raw, truncated in read_lines(reader, vp_agent.MAX_LINE_BYTES):
                item = vp_agent.parse_line(raw)
                if truncated and isinstance(item, vp_agent.Event):
                    item = vp_agent.Malformed(raw.decode("utf-8", "replace")[: vp_agent.MESSAGE_LIMIT], "line too long")
                await self.state.apply(item)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bad channel must never kill the worker
            log.exception("mission %s: reading the protocol channel failed", self.run.mission_id)
        finally:
            transport.close()

