"""What a worker's result tells about the agent (agent protocol v1): usage to add
to the mission's totals, why a run blocked and the question it asked, the
conversation it used; and the checks of ResumeMission. Pure functions over
MissionRecord, used by transitions.py inside its transactions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from services.common.errors import FieldViolation, InvalidArgument
from services.common.store.records import MissionRecord

INPUT_REQUIRED = "input_required"
BUDGET_EXCEEDED = "budget_exceeded"
BLOCKED_REASONS = (INPUT_REQUIRED, BUDGET_EXCEEDED)
ANSWER_MAX_BYTES = 32 * 1024


@dataclass(frozen=True)
class AgentReport:
    """The agent protocol fields of one MissionResult (all optional)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""
    blocked_reason: str = ""
    question: str = ""
    choices: list[str] = field(default_factory=list)
    conversation_agent: str = ""
    conversation_id: str = ""

    @property
    def has_usage(self) -> bool:
        return bool(self.input_tokens or self.output_tokens or self.cached_input_tokens or self.cost_usd)


NO_REPORT = AgentReport()


def _count(value: Any) -> int:
    return max(0, int(value or 0))


def with_usage(record: MissionRecord, report: AgentReport) -> MissionRecord:
    """Add a run's usage to the mission's totals; keep the conversation it used."""
    changes: dict[str, Any] = {}
    if report.has_usage:
        changes.update(
            usage_input_tokens=record.usage_input_tokens + _count(report.input_tokens),
            usage_output_tokens=record.usage_output_tokens + _count(report.output_tokens),
            usage_cached_input_tokens=record.usage_cached_input_tokens + _count(report.cached_input_tokens),
            usage_cost_usd=record.usage_cost_usd + max(0.0, float(report.cost_usd or 0.0)),
            usage_model=report.model or record.usage_model,
        )
    if report.conversation_id:
        changes.update(conversation_agent=report.conversation_agent, conversation_id=report.conversation_id)
    return replace(record, **changes) if changes else record


def usage_dict(record: MissionRecord) -> dict[str, Any]:
    """The mission's totals as event payload (numbers, as the spec's payload rules say)."""
    return {"input_tokens": record.usage_input_tokens, "output_tokens": record.usage_output_tokens,
            "cached_input_tokens": record.usage_cached_input_tokens,
            "total_tokens": record.usage_input_tokens + record.usage_output_tokens,
            "cost_usd": round(record.usage_cost_usd, 9), "model": record.usage_model}


def has_usage(record: MissionRecord) -> bool:
    return bool(record.usage_input_tokens or record.usage_output_tokens or record.usage_cost_usd)


def blocked_changes(report: AgentReport, summary: str) -> dict[str, Any]:
    """Record fields of a BLOCKED result: the reason (INPUT_REQUIRED unless the
    worker said otherwise) and, for a question, the question."""
    reason = report.blocked_reason if report.blocked_reason in BLOCKED_REASONS else INPUT_REQUIRED
    question = report.question or (summary if reason == INPUT_REQUIRED else "")
    return {"blocked_reason": reason, "question": question if reason == INPUT_REQUIRED else "",
            "question_choices": list(report.choices) if reason == INPUT_REQUIRED else []}


@dataclass(frozen=True)
class BudgetRaise:
    max_tokens: int | None = None
    max_cost_usd: float | None = None
    max_duration_seconds: float | None = None


def effective_limits(record: MissionRecord) -> tuple[int | None, float | None]:
    """The token and cost limits in force: raised by ResumeMission, else the envelope's."""
    budget = record.envelope.get("budget") or {}
    tokens = record.budget_max_tokens
    if tokens is None and budget.get("max_tokens") is not None:
        tokens = int(budget["max_tokens"])
    cost = record.budget_max_cost_usd
    if cost is None and budget.get("max_cost_usd") is not None:
        cost = float(budget["max_cost_usd"])
    return tokens, cost


def check_resume(record: MissionRecord, answer: str, raise_: BudgetRaise) -> None:
    """INVALID_ARGUMENT with every problem, or nothing (agent protocol v1 §9)."""
    violations: list[FieldViolation] = []
    if len(answer.encode("utf-8")) > ANSWER_MAX_BYTES:
        violations.append(FieldViolation("answer", f"at most {ANSWER_MAX_BYTES} bytes"))
    elif record.blocked_reason != BUDGET_EXCEEDED and not answer.strip():
        violations.append(FieldViolation("answer", "required: the mission is blocked on a question"))
    total = record.usage_input_tokens + record.usage_output_tokens
    if raise_.max_tokens is not None and raise_.max_tokens <= total:
        violations.append(FieldViolation("budget.max_tokens", f"must be above the {total} tokens already used"))
    if raise_.max_cost_usd is not None and raise_.max_cost_usd <= record.usage_cost_usd:
        violations.append(FieldViolation("budget.max_cost_usd",
                                         f"must be above the {record.usage_cost_usd:g} USD already used"))
    if raise_.max_duration_seconds is not None and not 1 <= raise_.max_duration_seconds <= 86400:
        violations.append(FieldViolation("budget.max_duration", "must be within 1s..24h"))
    if not violations and record.blocked_reason == BUDGET_EXCEEDED:
        tokens = raise_.max_tokens if raise_.max_tokens is not None else effective_limits(record)[0]
        cost = raise_.max_cost_usd if raise_.max_cost_usd is not None else effective_limits(record)[1]
        if (tokens is not None and total > tokens) or (cost is not None and record.usage_cost_usd > cost) \
                or (raise_.max_tokens is None and raise_.max_cost_usd is None):
            violations.append(FieldViolation("budget", "the mission is blocked on its budget: raise max_tokens "
                                                       "or max_cost_usd above the usage reached"))
    if violations:
        raise InvalidArgument(violations)
