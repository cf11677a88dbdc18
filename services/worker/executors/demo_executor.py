"""The embedded default executor: visible, harmless work.

It reports a few progress steps, writes ``result.md`` (objective plus a short
generated body) into the mission directory, appends a line to
``workspace_dir/journal.md`` so the VP's workspace visibly accumulates across
missions, and, when envelope.target_path is set, writes the result there too
(into ``<target>/result.md`` if the target is an existing directory or ends
with "/", else to the target file itself). It honours cancel between and
during steps and budget.max_duration.

It speaks agent protocol v1 (specs/agent-protocol-v1.md) in-process, through
the same parser and run state as a subprocess agent: it reports token usage and
cost for every step (so budgets stop it), keeps a conversation id (so a VP
remembers across missions), and when the objective ends with "?" it asks a
question first; the mission blocks until ResumeMission answers it.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

from google.protobuf import json_format

from services.common.clock import Clock, SystemClock
from services.worker.executors.base import (
    ExecutionResult,
    MissionRun,
    ProgressSink,
    format_seconds,
    max_duration_seconds,
    one_line,
)

#: Pretend pricing of the demo "model" (USD per token), so cost budgets work too.
DEMO_MODEL = "demo-1"
INPUT_PRICE = 3e-6
OUTPUT_PRICE = 15e-6
DEFAULT_DELAY = 0.2
DEFAULT_STEPS = 4
RESULT_FILE = "result.md"
JOURNAL_FILE = "journal.md"

_STEP_NAMES = ("reading the objective", "planning", "working", "reviewing", "writing the result")


class DemoExecutor:
    def __init__(
        self,
        *,
        delay: float = DEFAULT_DELAY,
        steps: int = DEFAULT_STEPS,
        clock: Clock | None = None,
        path_policy=None,
    ) -> None:
        if delay < 0:
            raise ValueError("demo delay must be >= 0")
        if not 3 <= steps <= 5:
            raise ValueError("demo steps must be between 3 and 5")
        self.delay = float(delay)
        self.steps = steps
        self.clock = clock or SystemClock()
        #: Optional services.common.guardrails.PathPolicy, checked again before
        #: writing to target_path (the worker checks it before executing too).
        self.path_policy = path_policy

    async def run(self, run: MissionRun, progress: ProgressSink) -> ExecutionResult:
        if run.cancel.is_set():
            return ExecutionResult.cancelled("cancelled before start")
        # Imported here: the agents package builds on this one's base module.
        from services.worker.agents import vp_agent
        from services.worker.agents.run_state import AgentRunState
        from services.worker.agents.usage import BudgetLimits, UsageTotals

        state = AgentRunState(
            agent="demo", progress=progress, mission_dir=run.mission_dir,
            limits=BudgetLimits.for_mission(run.mission, run.envelope),
            usage_before=UsageTotals.from_proto(run.mission.usage if run.mission is not None else None),
            stop_grace=0.0, mission_id=run.mission_id,
        )

        async def say(event_type: str, **fields) -> None:
            await state.apply(vp_agent.parse_line(vp_agent.encode(event_type, **fields)))

        answer = run.mission.answer if run.mission is not None else ""
        await say(vp_agent.CONVERSATION, id=run.conversation_id or f"demo-{uuid.uuid4().hex[:12]}")
        timeout = max_duration_seconds(run.envelope)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        words = len(run.envelope.objective.split())

        async def spend() -> None:
            tokens_in, tokens_out = 120 + 8 * words, 40
            await say(vp_agent.USAGE, input_tokens=tokens_in, output_tokens=tokens_out, model=DEMO_MODEL,
                      cost_usd=tokens_in * INPUT_PRICE + tokens_out * OUTPUT_PRICE)

        names = _pick_steps(self.steps)
        for i, name in enumerate(names[:-1], start=1):
            await progress(f"step {i}/{len(names)}: {name}", {"step": i, "steps": len(names)})
            await spend()
            if state.stop.is_set():
                return state.outcome(ExecutionResult.completed())
            if i == 1 and run.envelope.objective.rstrip().endswith("?") and not answer:
                await say(vp_agent.NEEDS_INPUT, question=f"Before I go on: {one_line(run.envelope.objective, 300)}",
                          choices=["yes", "no"])
                return state.outcome(ExecutionResult.completed())
            stop = await self._pause(run, deadline)
            if stop == "cancelled":
                return state.outcome(ExecutionResult.cancelled())
            if stop == "timed_out":
                return state.outcome(ExecutionResult.timed_out(f"max_duration {format_seconds(timeout or 0)} exceeded"))

        await progress(f"step {len(names)}/{len(names)}: {names[-1]}", {"step": len(names), "steps": len(names)})
        if run.cancel.is_set():
            return state.outcome(ExecutionResult.cancelled())

        now = self.clock.now()
        objective = run.envelope.objective
        body = _render(run, now.isoformat(), answer)
        run.mission_dir.mkdir(parents=True, exist_ok=True)
        result_path = run.mission_dir / RESULT_FILE
        _write_atomic(result_path, body)
        written = [str(result_path)]

        if run.envelope.target_path:
            target = _target_file(run.envelope.target_path, self.path_policy)
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(target, body)
            written.append(str(target))

        run.workspace_dir.mkdir(parents=True, exist_ok=True)
        with open(run.workspace_dir / JOURNAL_FILE, "a", encoding="utf-8") as fh:
            fh.write(
                f"- {now.isoformat()} mission {run.mission_id} (attempt {run.attempt}): "
                f"{one_line(objective, 200) or '(no objective)'} -> missions/{run.mission_id}/{RESULT_FILE}\n"
            )
        await progress("result written", {"files": written})
        await say(vp_agent.ARTIFACT, path=RESULT_FILE)
        await say(vp_agent.RESULT, status="completed",
                  summary=f"demo: wrote {RESULT_FILE} for {one_line(objective, 120)!r}")
        return state.outcome(ExecutionResult.completed())

    async def _pause(self, run: MissionRun, deadline: float | None) -> str | None:
        """Wait ``delay`` or until cancel; "cancelled" or "timed_out" if the run must stop."""
        loop = asyncio.get_running_loop()
        wait = self.delay
        if deadline is not None:
            wait = min(wait, max(0.0, deadline - loop.time()))
        if wait > 0:
            try:
                await asyncio.wait_for(run.cancel.wait(), wait)
            except asyncio.TimeoutError:
                pass
        else:
            await asyncio.sleep(0)
        if run.cancel.is_set():
            return "cancelled"
        if deadline is not None and loop.time() >= deadline:
            return "timed_out"
        return None


def _pick_steps(n: int) -> tuple[str, ...]:
    if n == 5:
        return _STEP_NAMES
    if n == 4:
        return ("reading the objective", "planning", "working", "writing the result")
    return ("planning", "working", "writing the result")


def _render(run: MissionRun, when: str, answer: str = "") -> str:
    objective = run.envelope.objective.strip() or "(no objective)"
    constraints = (
        json_format.MessageToDict(run.envelope.constraints) if run.envelope.HasField("constraints") else {}
    )
    lines = [
        f"# Mission {run.mission_id}",
        "",
        "## Objective",
        "",
        objective,
        "",
        "## Result",
        "",
        f"Demo executor, attempt {run.attempt}, run {run.run_id or '-'}, finished {when}.",
        f"The objective has {len(objective.split())} word(s); this is a generated placeholder result.",
    ]
    if answer:
        lines += ["", "## Answer given", "", answer]
    if constraints:
        lines += ["", "## Constraints", ""] + [
            f"- {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(constraints.items())
        ]
    return "\n".join(lines) + "\n"


def _target_file(target_path: str, policy) -> Path:
    target = Path(target_path)
    if policy is not None:
        target = policy.check_target_path(target_path)
    if target_path.endswith("/") or target.is_dir():
        return target / RESULT_FILE
    return target


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
