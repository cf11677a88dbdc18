"""The configuration of one worker lane (one VP), validated up front.

Everything a worker needs to know is here: which lane it serves, where its
workspace lives, which executor runs missions, how many at once, where a
mission may write (target_path policy), lease TTL, drain timeout, and where the
dispatcher and the registry listen. ``LaneConfig.validate()`` (run by the
constructor) collects every problem into one ValueError with readable messages,
so a bad flag fails at start, not at the first mission.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common import limits
from services.common.validation import VP_ID_PATTERN
from services.worker.agents.presets import AGENT_PRESETS, build_agent_executor, channel_hooks
from services.worker.executors import EXECUTOR_KINDS, Executor, SubprocessExecutor, build_executor
from services.worker.containment.cgroups import CgroupTree
from services.common.guardrails import PathPolicy
from services.common.security import INSECURE_CHANNEL, ChannelSecurity

#: The registry's and the dispatcher's limits (services/common/limits.py), in the units of the flags.
MIN_LEASE_TTL = limits.MIN_LEASE_TTL.total_seconds()
MAX_LEASE_TTL = limits.MAX_LEASE_TTL.total_seconds()
MAX_CAPACITY = limits.MAX_WORKER_CAPACITY
DEFAULT_LEASE_TTL = 30.0
DEFAULT_DRAIN_TIMEOUT = 30.0
CONTAINMENT_MODES: tuple[str, ...] = ("tokens", "cgroup")
#: Every executor a worker can run: the built-in kinds and the agent CLI presets.
WORKER_EXECUTORS: tuple[str, ...] = (*EXECUTOR_KINDS, *AGENT_PRESETS)


def parse_command(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """A subprocess command template: a JSON list of strings (``'["python3", "run.py",
    "{objective}"]'``) or a string split like a shell would (``'python3 run.py {objective}'``;
    no shell ever runs it). A list/tuple is taken as is."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    text = str(value).strip()
    if not text:
        return ()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"command looks like a JSON list but is not valid JSON: {exc}") from None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise ValueError("command JSON must be a list of strings")
        return tuple(parsed)
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise ValueError(f"command cannot be split: {exc}") from None


def split_roots(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """os.pathsep-separated roots ("/srv/a:/srv/b" on POSIX); empty entries dropped."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items: list[str] = []
        for v in value:
            items.extend(split_roots(v))
        return tuple(items)
    return tuple(part for part in str(value).split(os.pathsep) if part.strip())


@dataclass(frozen=True)
class LaneConfig:
    vp_id: str
    workspace_root: Path
    dispatcher_addr: str
    registry_addr: str
    executor: str = "demo"
    command: tuple[str, ...] = ()
    entry_point: str = ""
    capacity: int = 1
    allowed_roots: tuple[Path, ...] = ()
    protected_roots: tuple[Path, ...] = ()
    lease_ttl: float = DEFAULT_LEASE_TTL
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    #: Extra keyword options for build_executor (e.g. {"delay": 0.05} for demo,
    #: {"kill_grace": 1.0} for subprocess). Not exposed as flags.
    executor_options: Mapping[str, Any] = field(default_factory=dict)
    #: Reconnect/retry backoff: jittered exponential from the first value, capped at the second.
    backoff_initial: float = 0.1
    backoff_max: float = 2.0
    #: Agent CLI presets (claude-code, codex): binary, --model, extra arguments.
    agent_bin: str = ""
    agent_model: str = ""
    agent_args: tuple[str, ...] = ()
    #: TLS and credentials of the channels to the registry and the dispatcher.
    security: ChannelSecurity = INSECURE_CHANNEL
    #: How agent processes are contained: "tokens" (process tokens, parent-death
    #: signal, subreaper, watchdog) or "cgroup" (also a cgroup v2 per run, where
    #: the hierarchy is mounted and writable; else the worker falls back, saying so).
    containment: str = "tokens"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "vp_id", (self.vp_id or "").strip())
        set_(self, "executor", (self.executor or "").strip().lower())
        set_(self, "command", parse_command(self.command))
        set_(self, "entry_point", (self.entry_point or "").strip())
        set_(self, "workspace_root", Path(os.path.abspath(os.path.expanduser(str(self.workspace_root or "")))))
        set_(self, "allowed_roots", tuple(Path(p) for p in split_roots([str(p) for p in self.allowed_roots])))
        set_(self, "protected_roots", tuple(Path(p) for p in split_roots([str(p) for p in self.protected_roots])))
        set_(self, "executor_options", dict(self.executor_options or {}))
        set_(self, "agent_bin", (self.agent_bin or "").strip())
        set_(self, "agent_model", (self.agent_model or "").strip())
        set_(self, "agent_args", tuple(str(a) for a in (self.agent_args or ())))
        self.validate()

    # -- validation -----------------------------------------------------

    def problems(self) -> list[str]:
        out: list[str] = []
        if not self.vp_id:
            out.append("vp_id is required (--vp-id / VP_WORKER_VP_ID), e.g. vp.coder.primary")
        elif not VP_ID_PATTERN.match(self.vp_id):
            out.append(f"vp_id {self.vp_id!r} is not a lane id: must match {VP_ID_PATTERN.pattern} "
                       "(e.g. vp.coder.primary)")
        for name, addr, flag in (("dispatcher", self.dispatcher_addr, "--dispatcher / VP_DISPATCHER_ADDR"),
                                 ("registry", self.registry_addr, "--registry / VP_REGISTRY_ADDR")):
            if not addr:
                out.append(f"{name} address is required ({flag})")
                continue
            host, sep, port = str(addr).rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
                out.append(f"{name} address must be HOST:PORT with a port in 1..65535, got {addr!r}")
        if self.executor not in WORKER_EXECUTORS:
            out.append(f"executor {self.executor!r} is unknown; expected one of {', '.join(WORKER_EXECUTORS)}")
        else:
            if self.executor not in AGENT_PRESETS and (self.agent_bin or self.agent_model or self.agent_args):
                out.append(f"--agent-bin, --agent-model and --agent-arg are only for the agent presets "
                           f"({', '.join(AGENT_PRESETS)}), not {self.executor!r}")
            if self.executor == "subprocess" and not self.command:
                out.append("executor 'subprocess' needs a command (--command / VP_WORKER_COMMAND), "
                           "e.g. --command 'python3 run.py {objective}'")
            if self.executor != "subprocess" and self.command:
                out.append(f"--command is only for executor 'subprocess', not {self.executor!r}")
            if self.executor == "python" and not self.entry_point:
                out.append("executor 'python' needs an entry point (--entry-point / VP_WORKER_ENTRY_POINT), "
                           "e.g. mypkg.missions:run")
            if self.executor != "python" and self.entry_point:
                out.append(f"--entry-point is only for executor 'python', not {self.executor!r}")
        if not isinstance(self.capacity, int) or isinstance(self.capacity, bool) \
                or not 1 <= self.capacity <= MAX_CAPACITY:
            out.append(f"capacity must be an integer in 1..{MAX_CAPACITY}, got {self.capacity!r}")
        for label, roots in (("allowed root", self.allowed_roots), ("protected root", self.protected_roots)):
            for root in roots:
                if not root.is_absolute():
                    out.append(f"{label} {str(root)!r} must be an absolute path")
        try:
            ttl = float(self.lease_ttl)
            if not MIN_LEASE_TTL <= ttl <= MAX_LEASE_TTL:
                out.append(f"lease TTL must be within {MIN_LEASE_TTL:g}..{MAX_LEASE_TTL:g} seconds, got {ttl:g}")
        except (TypeError, ValueError):
            out.append(f"lease TTL must be a number of seconds, got {self.lease_ttl!r}")
        try:
            if float(self.drain_timeout) < 0:
                out.append(f"drain timeout must be >= 0 seconds, got {self.drain_timeout!r}")
        except (TypeError, ValueError):
            out.append(f"drain timeout must be a number of seconds, got {self.drain_timeout!r}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            out.append("backoff_initial must be > 0 and <= backoff_max")
        if self.containment not in CONTAINMENT_MODES:
            out.append(f"containment must be one of {', '.join(CONTAINMENT_MODES)}, got {self.containment!r}")
        return out

    def validate(self) -> None:
        problems = self.problems()
        if not problems:
            # Build once so a bad command template, entry point or option is
            # reported now, with the executor's own message.
            try:
                self.build_executor()
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("invalid worker configuration:\n  - " + "\n  - ".join(problems))

    # -- derived --------------------------------------------------------

    @property
    def default_workspace_dir(self) -> Path:
        """``<workspace_root>/<vp_id>``: used when the registry creates the session."""
        return self.workspace_root / self.vp_id

    @property
    def run_records_dir(self) -> Path:
        """Where running agents are recorded (containment.RunRecords), so a
        restarted worker of this lane finds what a dead one left behind. Not
        inside the session workspace: it is known before the lease is."""
        return self.workspace_root / ".runs" / self.vp_id

    def path_policy(self) -> PathPolicy:
        return PathPolicy(allowed_roots=self.allowed_roots, protected_roots=self.protected_roots)

    def build_executor(self, *, worker_token: str = "", cgroups: CgroupTree | None = None) -> Executor:
        """``worker_token`` marks the agents of one worker incarnation; ``cgroups``
        gives each run a cgroup (subprocess executors only)."""
        options = dict(self.executor_options)
        if self.executor in AGENT_PRESETS:
            return self._contained(build_agent_executor(self.executor, agent_bin=self.agent_bin,
                                                        agent_model=self.agent_model, agent_args=self.agent_args,
                                                        **options), worker_token, cgroups)
        if self.executor == "subprocess":
            # Every subprocess agent may speak agent protocol v1 on its own channel.
            options.setdefault("hooks", channel_hooks(float(options.get("kill_grace", 5.0))))
        if self.executor == "demo":
            options.setdefault("path_policy", self.path_policy())
        executor = build_executor(self.executor, command=list(self.command) or None,
                                  entry_point=self.entry_point or None, **options)
        if self.executor in ("subprocess", "demo") and not hasattr(executor, "agent_name"):
            executor.agent_name = self.executor  # names the conversations it keeps (agent protocol v1 §8)
        return self._contained(executor, worker_token, cgroups)

    def _contained(self, executor: Executor, worker_token: str, cgroups: CgroupTree | None) -> Executor:
        """Agent processes are recorded per run and marked with the worker's token."""
        if isinstance(executor, SubprocessExecutor):
            executor.contain(self.run_records_dir, worker_token, cgroups)
        return executor

    @property
    def renew_interval(self) -> float:
        """How often the worker renews its lease directly while disconnected."""
        return max(0.2, float(self.lease_ttl) / 4.0)
