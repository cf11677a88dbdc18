"""Bounded retries with jittered exponential backoff, honouring RetryInfo."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try. A server RetryInfo delay replaces the
    computed backoff (capped at ``max_server_delay``) plus up to 10 % jitter."""

    max_attempts: int = 5
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    multiplier: float = 2.0
    max_server_delay: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, failures: int, server_delay: float | None = None) -> float:
        """Seconds to sleep after the ``failures``-th consecutive failure (from 1)."""
        if server_delay is not None and server_delay > 0:
            base = min(server_delay, self.max_server_delay)
            return base + self.rng.uniform(0, base * 0.1)
        ceiling = min(self.max_backoff, self.initial_backoff * self.multiplier ** max(0, failures - 1))
        # "Equal jitter": never zero, never above the ceiling.
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


NO_RETRY = RetryPolicy(max_attempts=1)
