"""Executor presets for real agent CLIs (``claude-code``, ``codex``) and the
protocol channel every subprocess agent gets (specs/agent-protocol-v1.md)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from services.worker.agents.channel import ChannelHooks
from services.worker.agents.claude_code import ClaudeCodeHooks
from services.worker.agents.codex import CodexHooks
from services.worker.executors.subprocess_executor import DEFAULT_KILL_GRACE, SubprocessExecutor

AGENT_PRESETS: dict[str, type] = {"claude-code": ClaudeCodeHooks, "codex": CodexHooks}
DEFAULT_BINS = {"claude-code": "claude", "codex": "codex"}
#: A CLI's JSON line can carry a whole file (tool results, the final answer).
CLI_MAX_LINE_BYTES = 16 * 1024 * 1024
_CLI_OPTIONS = frozenset({"kill_grace", "env", "inherit_env", "default_max_duration", "stderr_tail_bytes",
                          "stdout_log_limit"})


def channel_hooks(kill_grace: float = DEFAULT_KILL_GRACE):
    """The hooks factory giving any subprocess agent the protocol channel."""
    return functools.partial(ChannelHooks, stop_grace=kill_grace)


def build_agent_executor(kind: str, *, agent_bin: str = "", agent_model: str = "",
                         agent_args: Sequence[str] = (), **options: Any) -> SubprocessExecutor:
    """A SubprocessExecutor running the ``kind`` CLI through its adapter."""
    if kind not in AGENT_PRESETS:
        raise ValueError(f"unknown agent preset {kind!r}; expected one of {', '.join(AGENT_PRESETS)}")
    unknown = sorted(set(options) - _CLI_OPTIONS)
    if unknown:
        raise ValueError(f"executor kind {kind!r} does not take option(s) {', '.join(unknown)}")
    binary = (agent_bin or DEFAULT_BINS[kind]).strip()
    if not binary:
        raise ValueError(f"executor kind {kind!r} needs an agent binary (--agent-bin)")
    kill_grace = float(options.get("kill_grace", DEFAULT_KILL_GRACE))
    hooks = functools.partial(AGENT_PRESETS[kind], stop_grace=kill_grace, binary=binary, model=agent_model.strip(),
                              extra_args=[str(a) for a in agent_args])
    # The adapter builds the whole argv; the template is only the binary.
    executor = SubprocessExecutor([binary], hooks=hooks, max_line_bytes=CLI_MAX_LINE_BYTES, **options)
    executor.agent_name = kind
    return executor
