"""Usage totals and budget limits (specs/agent-protocol-v1.md §5)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.contracts.vp.v1 import mission_pb2


@dataclass
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_usd: float = 0.0
    model: str = ""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def empty(self) -> bool:
        return not (self.input_tokens or self.output_tokens or self.cached_input_tokens or self.cost_usd)

    def add(self, input_tokens: int = 0, output_tokens: int = 0, cached_input_tokens: int = 0,
            cost_usd: float = 0.0, model: str = "") -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.cached_input_tokens += cached_input_tokens
        self.cost_usd += cost_usd
        if model:
            self.model = model

    def replace(self, input_tokens: int = 0, output_tokens: int = 0, cached_input_tokens: int = 0,
                cost_usd: float = 0.0, model: str = "") -> None:
        """Cumulative report: the run's totals so far. Never lowers a total, so a
        late cumulative report cannot undo increments already counted."""
        self.input_tokens = max(self.input_tokens, input_tokens)
        self.output_tokens = max(self.output_tokens, output_tokens)
        self.cached_input_tokens = max(self.cached_input_tokens, cached_input_tokens)
        self.cost_usd = max(self.cost_usd, cost_usd)
        if model:
            self.model = model

    def plus(self, other: "UsageTotals") -> "UsageTotals":
        return UsageTotals(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                           self.cached_input_tokens + other.cached_input_tokens, self.cost_usd + other.cost_usd,
                           other.model or self.model)

    def to_proto(self) -> mission_pb2.Usage:
        return mission_pb2.Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                                 cached_input_tokens=self.cached_input_tokens, total_tokens=self.total_tokens,
                                 cost_usd=round(self.cost_usd, 9), model=self.model)

    def to_dict(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_input_tokens": self.cached_input_tokens, "total_tokens": self.total_tokens,
                "cost_usd": round(self.cost_usd, 9), "model": self.model}

    @classmethod
    def from_proto(cls, usage: mission_pb2.Usage | None) -> "UsageTotals":
        if usage is None:
            return cls()
        return cls(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens, usage.cost_usd, usage.model)


@dataclass(frozen=True)
class BudgetLimits:
    max_tokens: int | None = None
    max_cost_usd: float | None = None

    @classmethod
    def of(cls, budget: mission_pb2.Budget | None) -> "BudgetLimits":
        if budget is None:
            return cls()
        return cls(budget.max_tokens if budget.HasField("max_tokens") else None,
                   budget.max_cost_usd if budget.HasField("max_cost_usd") else None)

    @classmethod
    def for_mission(cls, mission: mission_pb2.Mission | None, envelope: mission_pb2.MissionEnvelope) -> "BudgetLimits":
        """The budget in force: Mission.budget (raised by ResumeMission) when set, else the envelope's."""
        if mission is not None and mission.HasField("budget"):
            return cls.of(mission.budget)
        return cls.of(envelope.budget if envelope.HasField("budget") else None)

    @property
    def unlimited(self) -> bool:
        return self.max_tokens is None and self.max_cost_usd is None

    def crossed(self, totals: UsageTotals) -> str | None:
        """A message naming the limit crossed by ``totals`` (strictly greater), or None."""
        if self.max_tokens is not None and totals.total_tokens > self.max_tokens:
            return f"max_tokens {self.max_tokens} exceeded: {totals.total_tokens} tokens used"
        if self.max_cost_usd is not None and totals.cost_usd > self.max_cost_usd:
            return f"max_cost_usd {self.max_cost_usd:g} exceeded: {totals.cost_usd:.6g} USD used"
        return None
