"""What the worker learns from one agent run, and the run's outcome
(specs/agent-protocol-v1.md §3-§5).

AgentRunState applies protocol events, whether they come from the channel
(vp_agent.parse_line) or from an adapter that maps a CLI's own output: it
reports progress, accumulates usage, watches the budget, and asks the executor
to stop the agent (``stop``) when the budget is crossed or the agent asked a
question. ``outcome()`` then turns the process result into the run's result.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from services.worker.agents import vp_agent
from services.worker.agents.usage import BudgetLimits, UsageTotals
from services.worker.executors.base import (
    BLOCKED,
    BUDGET_EXCEEDED,
    CANCELLED,
    COMPLETED,
    FAILED,
    TIMED_OUT,
    ExecutionResult,
    ProgressSink,
    one_line,
)

log = logging.getLogger(__name__)

AGENT_NO_RESULT = "AGENT_NO_RESULT"
AGENT_FAILED = "AGENT_FAILED"
INPUT_REQUIRED = "input_required"
BUDGET = "budget_exceeded"


class AgentRunState:
    def __init__(self, *, agent: str, progress: ProgressSink, mission_dir: Path, limits: BudgetLimits,
                 usage_before: UsageTotals, stop_grace: float, strict: bool = False, mission_id: str = "") -> None:
        self.agent = agent
        self._progress = progress
        self.mission_dir = Path(mission_dir)
        self.limits = limits
        self.usage_before = usage_before
        self.usage = UsageTotals()
        self.stop_grace = stop_grace
        #: Adapters: a missing result is always AGENT_NO_RESULT; the channel: only
        #: once the agent has spoken the protocol.
        self.strict = strict
        self.mission_id = mission_id
        self.saw_event = False
        self.conversation_id = ""
        self.question = ""
        self.choices: list[str] = []
        self.result: vp_agent.Event | None = None
        self.budget_message = ""
        self.ignored = 0
        self.malformed = 0
        #: Set to ask the executor to stop the agent (budget crossed, question asked).
        self.stop = asyncio.Event()
        self._timer: asyncio.Task | None = None

    # -- applying events -----------------------------------------------------

    async def apply(self, item: vp_agent.Event | vp_agent.Malformed | vp_agent.Ignored) -> None:
        if isinstance(item, vp_agent.Ignored):
            self.ignored += 1
            return
        if isinstance(item, vp_agent.Malformed):
            self.malformed += 1
            await self._say(item.text, {"stream": "agent", "malformed": True, "why": item.why})
            return
        self.saw_event = True
        data = item.data
        if item.type == vp_agent.PROGRESS:
            payload = {"stream": "agent", "kind": "progress"}
            if "percent" in data:
                payload["percent"] = data["percent"]
            await self._say(data["message"], payload)
        elif item.type == vp_agent.USAGE:
            await self.add_usage(data, cumulative=data.get("cumulative", False))
        elif item.type == vp_agent.ARTIFACT:
            await self._artifact(data["path"], data.get("description", ""))
        elif item.type == vp_agent.CONVERSATION:
            self.conversation_id = data["id"]
        elif item.type == vp_agent.NEEDS_INPUT:
            if not self.question and self.result is None:
                self.question, self.choices = data["question"], list(data.get("choices") or [])
                await self._say(f"needs input: {one_line(self.question, 300)}",
                                {"stream": "agent", "kind": "needs_input", "choices": self.choices})
                self._stop_after(self.stop_grace)
        elif item.type == vp_agent.RESULT:
            if self.result is None:
                self.result = item

    async def add_usage(self, data: dict, *, cumulative: bool) -> None:
        fields = {k: data.get(k) or 0 for k in ("input_tokens", "output_tokens", "cached_input_tokens", "cost_usd")}
        fields["model"] = data.get("model") or ""
        (self.usage.replace if cumulative else self.usage.add)(**fields)
        totals = self.usage_before.plus(self.usage)
        payload = {"stream": "agent", "kind": "usage", "usage": self.usage.to_dict()}
        message = f"usage: {totals.total_tokens} tokens, {totals.cost_usd:.4f} USD"
        # Usage that arrives with the end of the run (after its result or question)
        # is recorded, but there is nothing left to stop (spec §5).
        if not self.budget_message and self.result is None and not self.question:
            crossed = self.limits.crossed(totals)
            if crossed:
                self.budget_message = crossed
                payload["budget_exceeded"] = True
                message = f"budget exceeded: {crossed}; stopping the agent"
                self.stop.set()
        await self._say(message, payload)

    async def _artifact(self, path: str, description: str) -> None:
        root = self.mission_dir.resolve()
        candidate = Path(path)
        resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
        if resolved != root and root in resolved.parents:
            rel = str(resolved.relative_to(root))
            await self._say(f"artifact: {rel}" + (f" ({one_line(description, 200)})" if description else ""),
                            {"stream": "agent", "kind": "artifact", "path": rel})
        else:
            await self._say(f"artifact outside the mission directory ignored: {one_line(path, 200)}",
                            {"stream": "agent", "kind": "artifact", "rejected": True})

    async def say(self, message: str, payload: dict | None = None) -> None:
        """Progress from an adapter (its own summary of a CLI event)."""
        await self._say(message, {"stream": "agent", **(payload or {})})

    async def _say(self, message: str, payload: dict) -> None:
        if self.ignored:
            payload = {**payload, "ignored_lines": self.ignored}
            self.ignored = 0
        try:
            await self._progress(message, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken sink must not kill the mission
            log.warning("mission %s: progress sink failed: %r", self.mission_id, exc)

    def _stop_after(self, grace: float) -> None:
        """The agent should exit by itself after a question; stop it if it does not."""
        if self._timer is not None or self.stop.is_set():
            return

        async def later() -> None:
            await asyncio.sleep(grace)
            self.stop.set()

        self._timer = asyncio.ensure_future(later())

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    # -- outcome ---------------------------------------------------------------

    def outcome(self, base: ExecutionResult) -> ExecutionResult:
        """The run's result (spec §4.3), given what the process itself ended with."""
        self.close()
        result = self._decide(base)
        result.usage = None if self.usage.empty else self.usage.to_proto()
        result.conversation_id = self.conversation_id
        result.agent = self.agent
        return result

    def _decide(self, base: ExecutionResult) -> ExecutionResult:
        if base.outcome in (CANCELLED, TIMED_OUT):
            return base
        if self.budget_message:
            return ExecutionResult(BLOCKED, summary=base.summary, error_code=BUDGET_EXCEEDED,
                                   error_message=self.budget_message, blocked_reason=BUDGET)
        if self.question:
            return ExecutionResult(BLOCKED, summary=one_line(self.question, 500), blocked_reason=INPUT_REQUIRED,
                                   question=self.question, choices=tuple(self.choices))
        if self.result is not None:
            data = self.result.data
            status, summary, error = data["status"], data["summary"], data.get("error") or {}
            if status == "completed":
                return ExecutionResult(COMPLETED, summary=summary or base.summary)
            if status == "failed":
                return ExecutionResult(FAILED, summary=summary, error_code=error.get("code") or AGENT_FAILED,
                                       error_message=error.get("message") or summary or "the agent reported failure")
            question = data.get("question") or summary or "the agent reported it is blocked"
            return ExecutionResult(BLOCKED, summary=summary or one_line(question, 500), blocked_reason=INPUT_REQUIRED,
                                   question=question, choices=tuple(data.get("choices") or ()),
                                   error_code=error.get("code", ""), error_message=error.get("message", ""))
        if self.strict or self.saw_event:
            detail = f"; the process {base.error_message}" if base.outcome == FAILED and base.error_message else ""
            return ExecutionResult(FAILED, summary=base.summary, error_code=AGENT_NO_RESULT,
                                   error_message=f"the agent ended without a result{detail}")
        return base
