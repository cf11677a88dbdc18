"""The ``codex`` preset: OpenAI Codex CLI, ``codex exec --json``
(specs/agent-protocol-v1.md §7.2)."""

from __future__ import annotations

from typing import Any

from services.worker.agents import vp_agent
from services.worker.agents.cli_adapter import CliHooks, first_line

NAME = "codex"
DEFAULT_BIN = "codex"


class CodexHooks(CliHooks):
    agent = NAME

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.turn_completed = False
        self.last_message = ""

    def command(self, argv: list[str]) -> list[str]:
        out = [self.binary, "exec", "--json"]
        if self.model:
            out += ["--model", self.model]
        out += self.extra_args
        if self.run.conversation_id:
            out += ["resume", self.run.conversation_id]
        return out + [self.prompt()]

    async def on_event(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "thread.started" and isinstance(obj.get("thread_id"), str) and obj["thread_id"]:
            await self.emit(vp_agent.CONVERSATION, id=obj["thread_id"])
            await self.state.say(f"codex thread {obj['thread_id']}", {"kind": "session"})
        elif kind == "turn.completed":
            # codex exec runs one turn: its end is the run's result, and its usage
            # the run's final totals (recorded after the outcome, spec §5).
            self.turn_completed = True
            if self.state.result is None and not self.state.question:
                await self.finish_with(self.last_message)
            usage = obj.get("usage") or {}
            await self.emit(vp_agent.USAGE, cumulative=True, model=self.model or NAME,
                            input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                            cached_input_tokens=usage.get("cached_input_tokens"))
        elif kind == "turn.failed":
            message = (obj.get("error") or {}).get("message") or "the turn failed"
            await self.emit(vp_agent.RESULT, status="failed", summary=first_line(message, 500),
                            error={"code": "CODEX_TURN_FAILED", "message": message})
        elif kind == "error":
            message = obj.get("message") or "codex reported an error"
            await self.emit(vp_agent.RESULT, status="failed", summary=first_line(message, 500),
                            error={"code": "CODEX_ERROR", "message": message})
        elif kind == "request_user_input":
            await self._question(obj.get("questions") or [])
        elif isinstance(kind, str) and kind.startswith("item."):
            await self._item(kind, obj.get("item") or {})

    async def _question(self, questions: list) -> None:
        texts = [q.get("question", "") for q in questions if isinstance(q, dict) and q.get("question")]
        if not texts:
            return
        options = questions[0].get("options") if isinstance(questions[0], dict) else None
        choices = [o.get("label") for o in options or [] if isinstance(o, dict) and o.get("label")]
        await self.emit(vp_agent.NEEDS_INPUT, question="\n\n".join(texts), choices=choices)

    async def _item(self, kind: str, item: dict[str, Any]) -> None:
        item_type = item.get("type")
        done = kind == "item.completed"
        if item_type == "agent_message" and done:
            self.last_message = item.get("text") or ""
            if first_line(self.last_message):
                await self.state.say(first_line(self.last_message), {"kind": "message"})
        elif item_type == "command_execution" and kind in ("item.started", "item.completed"):
            command = first_line(str(item.get("command", "")), 160)
            if done:
                await self.state.say(f"command {item.get('status', 'done')} (exit {item.get('exit_code')}): {command}",
                                     {"kind": "command", "exit_code": item.get("exit_code")})
            else:
                await self.state.say(f"$ {command}", {"kind": "command"})
        elif item_type == "file_change" and done:
            changes = [f"{c.get('kind', '?')} {c.get('path', '?')}" for c in item.get("changes") or []
                       if isinstance(c, dict)]
            await self.state.say("files: " + first_line(", ".join(changes) or "-"), {"kind": "file_change"})
        elif item_type == "mcp_tool_call" and done:
            await self.state.say(f"tool: {item.get('server', '?')}.{item.get('tool', '?')} ({item.get('status', '')})",
                                 {"kind": "tool"})
        elif item_type == "web_search" and done:
            await self.state.say(f"search: {first_line(str(item.get('query', '')))}", {"kind": "search"})
        elif item_type == "todo_list" and done:
            items = item.get("items") or []
            finished = sum(1 for i in items if isinstance(i, dict) and i.get("completed"))
            await self.state.say(f"todo: {finished}/{len(items)} done", {"kind": "todo"})
        elif item_type == "reasoning" and done and first_line(item.get("text", "")):
            await self.state.say(f"thinking: {first_line(item['text'], 120)}", {"kind": "reasoning"})
        elif item_type == "error" and done:
            await self.state.say(f"error: {first_line(str(item.get('message', '')))}", {"kind": "error"})
