"""Registry settings, named after the seeds' UA_VP_* variables where they fit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from services.common.limits import MAX_LEASE_TTL as MAX_TTL
from services.common.limits import MIN_LEASE_TTL as MIN_TTL


@dataclass(frozen=True)
class RegistrySettings:
    lease_ttl: timedelta = timedelta(seconds=30)
    sweep_interval: timedelta = timedelta(seconds=5)
    recovery_grace: timedelta = timedelta(seconds=60)
    # None means twice the lease TTL.
    heartbeat_stale: timedelta | None = None
    # New sessions' workspace_dir must lie under it (absolute, normalized); None: any
    # absolute normalized path except "/". The process always sets one.
    workspace_root: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if not MIN_TTL <= self.lease_ttl <= MAX_TTL:
            problems.append(f"lease_ttl must be within {MIN_TTL}..{MAX_TTL}, got {self.lease_ttl}")
        if self.sweep_interval <= timedelta(0):
            problems.append("sweep_interval must be positive")
        if self.recovery_grace < timedelta(0):
            problems.append("recovery_grace must not be negative")
        if self.heartbeat_stale is not None and self.heartbeat_stale <= timedelta(0):
            problems.append("heartbeat_stale must be positive")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def heartbeat_stale_after(self) -> timedelta:
        return self.heartbeat_stale or self.lease_ttl * 2
