"""Shared parts of the real agent CLI adapters (specs/agent-protocol-v1.md §7).

An adapter runs the CLI under SubprocessExecutor, reads the CLI's documented
JSON lines on stdout and maps them onto protocol v1 events of the run's
AgentRunState. The protocol channel is still offered (VP_AGENT_EVENTS_FD), so
tools the agent runs may use it too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from services.worker.agents import vp_agent
from services.worker.agents.channel import ChannelHooks
from services.worker.executors.base import MissionRun, ProgressSink, one_line

#: Our own convention, told to the agent in its prompt: a final message whose
#: last non-blank line starts with this marker is a question for the caller.
NEEDS_INPUT_MARKER = "NEEDS_INPUT:"
_MARKER_RE = re.compile(r"^\s*NEEDS_INPUT:\s*(.+?)\s*$")
INSTRUCTIONS = (
    "If you cannot finish without an answer from the person who gave you this task, stop and end your "
    f"final message with one line of the form '{NEEDS_INPUT_MARKER} <your question>'."
)
PROGRESS_CHARS = 200


def question_in(text: str) -> str:
    """The question of a final message that ends with the NEEDS_INPUT marker, or ""."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    match = _MARKER_RE.match(lines[-1])
    return match.group(1) if match else ""


def first_line(text: str, limit: int = PROGRESS_CHARS) -> str:
    for line in (text or "").splitlines():
        if line.strip():
            return one_line(line, limit)
    return ""


def error_code(prefix: str, name: str) -> str:
    cleaned = re.sub(r"[^A-Z0-9_]", "_", (name or "").upper()).strip("_")
    return f"{prefix}_{cleaned}" if cleaned else prefix


class CliHooks(ChannelHooks):
    """Base of the adapters: builds the prompt, parses stdout as JSON lines."""

    strict = True

    def __init__(self, run: MissionRun, progress: ProgressSink, *, stop_grace: float, binary: str, model: str,
                 extra_args: Sequence[str]) -> None:
        super().__init__(run, progress, stop_grace=stop_grace)
        self.binary = binary
        self.model = model
        self.extra_args = list(extra_args)

    def prompt(self) -> str:
        mission = self.run.mission
        answer = self.answer
        if answer:
            question = mission.input_request.question if mission is not None and mission.HasField("input_request") \
                else ""
            text = f'Answer to your question "{question}": {answer}' if question else f"Answer: {answer}"
            if not self.run.conversation_id:
                # A resume without a conversation to continue: the agent needs the task again.
                text = f"{self.run.envelope.objective}\n\n{text}"
        elif self.run.conversation_id and mission is not None and mission.resume_count:
            # Resumed after a raised budget: the conversation already holds the task.
            text = f"Continue where you stopped. The task was: {self.run.envelope.objective}"
        else:
            text = self.run.envelope.objective
        text = f"{text}\n\n{INSTRUCTIONS}"
        # Never let a prompt be read as an option by the CLI's argument parser.
        return " " + text if text.startswith("-") else text

    def stdin(self, default: bytes) -> bytes:
        # Both CLIs append piped stdin to the prompt; the prompt is the argv.
        return b""

    async def stdout_line(self, line: str, payload: dict) -> bool:
        text = line.strip()
        if not text:
            return True
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            obj = None
        if not isinstance(obj, dict):
            await self.state.apply(vp_agent.Malformed(one_line(text, vp_agent.MESSAGE_LIMIT), "not a JSON object"))
            return True
        try:
            await self.on_event(obj)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            # A line of an unexpected shape is shown, never fatal.
            await self.state.apply(vp_agent.Malformed(one_line(text, 500), f"unexpected shape: {exc}"))
        return True

    async def on_event(self, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    async def emit(self, event_type: str, **fields: Any) -> None:
        """Apply a protocol event through the same normalization as the channel."""
        await self.state.apply(vp_agent.normalize({"v": vp_agent.VERSION, "type": event_type, **fields}))

    async def finish_with(self, text: str, *, summary: str = "") -> None:
        """A successful end: a final message ending with the marker is a question."""
        question = question_in(text)
        if question:
            await self.emit(vp_agent.NEEDS_INPUT, question=question)
        else:
            await self.emit(vp_agent.RESULT, status="completed", summary=summary or text)
