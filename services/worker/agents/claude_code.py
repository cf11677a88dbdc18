"""The ``claude-code`` preset: Claude Code headless, ``claude -p --output-format
stream-json --verbose`` (specs/agent-protocol-v1.md §7.1)."""

from __future__ import annotations

from typing import Any

from services.worker.agents import vp_agent
from services.worker.agents.cli_adapter import CliHooks, error_code, first_line

NAME = "claude-code"
DEFAULT_BIN = "claude"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _tokens(usage: Any) -> dict[str, int]:
    """Anthropic usage: input_tokens excludes cache writes and reads; ours includes them."""
    if not isinstance(usage, dict):
        return {}
    fresh = _int(usage.get("input_tokens"))
    created = _int(usage.get("cache_creation_input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    return {"input_tokens": fresh + created + read, "cached_input_tokens": read,
            "output_tokens": _int(usage.get("output_tokens"))}


class ClaudeCodeHooks(CliHooks):
    agent = NAME

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen_model = self.model
        #: usage per API message id: stream-json repeats a message's usage on each of its lines.
        self.message_usage: dict[str, dict[str, int]] = {}
        self.totals = {"input_tokens": 0, "cached_input_tokens": 0, "output_tokens": 0}

    def command(self, argv: list[str]) -> list[str]:
        out = [self.binary, "-p", "--output-format", "stream-json", "--verbose"]
        if self.model:
            out += ["--model", self.model]
        if self.run.conversation_id:
            out += ["--resume", self.run.conversation_id]
        return out + self.extra_args + [self.prompt()]

    async def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "system" and obj.get("subtype") == "init":
            if isinstance(obj.get("model"), str) and obj["model"]:
                self.seen_model = obj["model"]
            if isinstance(obj.get("session_id"), str) and obj["session_id"]:
                await self.emit(vp_agent.CONVERSATION, id=obj["session_id"])
                await self.state.say(f"claude session {obj['session_id']}", {"kind": "session"})
        elif kind == "assistant":
            await self._assistant(obj.get("message") or {})
        elif kind == "result":
            await self._result(obj)

    async def _assistant(self, message: dict[str, Any]) -> None:
        if isinstance(message.get("model"), str) and message["model"]:
            self.seen_model = message["model"]
        for block in message.get("content") or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and first_line(block.get("text", "")):
                await self.state.say(first_line(block["text"]), {"kind": "message"})
            elif block.get("type") == "tool_use":
                await self.state.say(f"tool: {block.get('name', '?')}", {"kind": "tool", "tool": block.get("name")})
        tokens = _tokens(message.get("usage"))
        if tokens:
            key = str(message.get("id", len(self.message_usage)))
            previous = self.message_usage.get(key, {})
            if previous == tokens:
                return  # the same API message's usage, repeated on its next content line
            self.message_usage[key] = tokens
            for name in self.totals:
                self.totals[name] += tokens.get(name, 0) - previous.get(name, 0)
            await self.emit(vp_agent.USAGE, cumulative=True, model=self.seen_model, **self.totals)

    async def _result(self, obj: dict[str, Any]) -> None:
        if isinstance(obj.get("session_id"), str) and obj["session_id"]:
            await self.emit(vp_agent.CONVERSATION, id=obj["session_id"])
        await self._outcome(obj)
        # After the outcome: the final totals are recorded, not a reason to stop (spec §5).
        tokens = _tokens(obj.get("usage"))
        cost = obj.get("total_cost_usd")
        await self.emit(vp_agent.USAGE, cumulative=True, model=self.seen_model,
                        cost_usd=cost if isinstance(cost, (int, float)) else 0, **tokens)

    async def _outcome(self, obj: dict[str, Any]) -> None:
        subtype = str(obj.get("subtype") or "")
        text = obj.get("result") if isinstance(obj.get("result"), str) else ""
        await self.state.say(f"claude finished: {subtype or '?'} after {obj.get('num_turns', '?')} turn(s)",
                             {"kind": "result", "subtype": subtype, "num_turns": obj.get("num_turns"),
                              "is_error": bool(obj.get("is_error"))})
        if subtype == "success" and not obj.get("is_error"):
            await self.finish_with(text)
            return
        errors = obj.get("errors")
        detail = text or ("; ".join(str(e) for e in errors) if isinstance(errors, list) and errors else "")
        code = "CLAUDE_ERROR" if subtype == "success" else error_code("CLAUDE", subtype)
        await self.emit(vp_agent.RESULT, status="failed", summary=first_line(detail, 500),
                        error={"code": code, "message": detail or f"claude ended with {subtype or 'an error'}"})
