"""Agent protocol v1 for agents written in Python (specs/agent-protocol-v1.md).

Standard library only, so an agent can import this module or copy the file.
The worker reads with the same parser (``parse_line``), so what an agent writes
here is exactly what the worker understands.

    agent = connect()                       # VP_AGENT_EVENTS_FD, or a no-op sink
    agent.progress("reading the code", percent=10)
    agent.usage(input_tokens=1200, output_tokens=300, cost_usd=0.01, model="m")
    agent.needs_input("Which branch?", choices=["main", "dev"])
    agent.result("completed", summary="done")
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
EVENTS_FD_ENV = "VP_AGENT_EVENTS_FD"
PROTOCOL_ENV = "VP_AGENT_PROTOCOL"
CONTEXT_FILE_ENV = "VP_AGENT_CONTEXT_FILE"
ANSWER_ENV = "VP_AGENT_ANSWER"
CONVERSATION_ENV = "VP_AGENT_CONVERSATION_ID"

PROGRESS = "progress"
USAGE = "usage"
ARTIFACT = "artifact"
NEEDS_INPUT = "needs_input"
CONVERSATION = "conversation"
RESULT = "result"
EVENT_TYPES = frozenset({PROGRESS, USAGE, ARTIFACT, NEEDS_INPUT, CONVERSATION, RESULT})
RESULT_STATUSES = frozenset({"completed", "failed", "blocked"})

MAX_LINE_BYTES = 64 * 1024
MESSAGE_LIMIT = 4096
QUESTION_LIMIT = 8192
CHOICES_LIMIT = 20
CHOICE_LIMIT = 256
CONVERSATION_ID_LIMIT = 256
SUMMARY_LIMIT = 4096
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
GENERIC_ERROR_CODE = "AGENT_ERROR"


@dataclass(frozen=True)
class Event:
    """One parsed, normalized protocol event: ``type`` plus its known keys."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Malformed:
    """A line that is not a valid v1 event; ``text`` is shown as progress."""

    text: str
    why: str


@dataclass(frozen=True)
class Ignored:
    """A valid line the worker skips: another protocol version or an unknown type."""

    why: str


# -- parsing (shared with the worker) ---------------------------------------


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)


def _amount(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    if not math.isfinite(value) or value < 0:
        return 0.0
    return float(value)


def _choices(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [_text(c, CHOICE_LIMIT) for c in value if isinstance(c, (str, int, float)) and str(c).strip()][
        :CHOICES_LIMIT
    ]


def _error(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    code = _text(value.get("code"), 64).strip()
    if code and not _CODE_RE.match(code):
        code = GENERIC_ERROR_CODE
    return {"code": code, "message": _text(value.get("message"), SUMMARY_LIMIT)}


def normalize(obj: dict[str, Any]) -> Event | Malformed | Ignored:
    """Validate and normalize one decoded JSON object."""
    version = obj.get("v", VERSION)
    if version != VERSION or isinstance(version, bool):
        return Ignored(f"protocol version {version!r}")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        return Malformed(json.dumps(obj, ensure_ascii=False)[:MESSAGE_LIMIT], "missing type")
    if kind not in EVENT_TYPES:
        return Ignored(f"unknown type {kind!r}")
    if kind == PROGRESS:
        data: dict[str, Any] = {"message": _text(obj.get("message"), MESSAGE_LIMIT)}
        percent = obj.get("percent")
        if isinstance(percent, (int, float)) and not isinstance(percent, bool) and math.isfinite(percent):
            data["percent"] = min(100.0, max(0.0, float(percent)))
        return Event(kind, data)
    if kind == USAGE:
        return Event(kind, {
            "input_tokens": _count(obj.get("input_tokens")),
            "output_tokens": _count(obj.get("output_tokens")),
            "cached_input_tokens": _count(obj.get("cached_input_tokens")),
            "cost_usd": _amount(obj.get("cost_usd")),
            "model": _text(obj.get("model"), 128),
            "cumulative": obj.get("cumulative") is True,
        })
    if kind == ARTIFACT:
        path = _text(obj.get("path"), 4096)
        if not path.strip():
            return Malformed(json.dumps(obj, ensure_ascii=False)[:MESSAGE_LIMIT], "artifact without a path")
        return Event(kind, {"path": path, "description": _text(obj.get("description"), MESSAGE_LIMIT)})
    if kind == NEEDS_INPUT:
        question = _text(obj.get("question"), QUESTION_LIMIT)
        if not question.strip():
            return Malformed(json.dumps(obj, ensure_ascii=False)[:MESSAGE_LIMIT], "needs_input without a question")
        return Event(kind, {"question": question, "choices": _choices(obj.get("choices"))})
    if kind == CONVERSATION:
        conv = _text(obj.get("id"), CONVERSATION_ID_LIMIT + 1).strip()
        if not conv or len(conv) > CONVERSATION_ID_LIMIT:
            return Malformed(json.dumps(obj, ensure_ascii=False)[:MESSAGE_LIMIT], "conversation id missing or too long")
        return Event(kind, {"id": conv})
    # RESULT
    status = obj.get("status")
    if status not in RESULT_STATUSES:
        return Malformed(json.dumps(obj, ensure_ascii=False)[:MESSAGE_LIMIT], f"result status {status!r}")
    return Event(kind, {
        "status": status,
        "summary": _text(obj.get("summary"), SUMMARY_LIMIT),
        "error": _error(obj.get("error")),
        "question": _text(obj.get("question"), QUESTION_LIMIT),
        "choices": _choices(obj.get("choices")),
    })


def parse_line(line: str | bytes) -> Event | Malformed | Ignored:
    """Parse one channel line. Never raises: bad input becomes Malformed."""
    if isinstance(line, bytes):
        line = line[:MAX_LINE_BYTES].decode("utf-8", errors="replace")
    text = line.strip()
    if not text:
        return Ignored("blank line")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Malformed(text[:MESSAGE_LIMIT], "not JSON")
    if not isinstance(obj, dict):
        return Malformed(text[:MESSAGE_LIMIT], "not a JSON object")
    return normalize(obj)


def encode(event_type: str, **fields: Any) -> str:
    """One protocol line (without the newline)."""
    body = {"v": VERSION, "type": event_type}
    body.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


# -- writing (for agents) -----------------------------------------------------


class Agent:
    """Writes protocol v1 events to the worker's channel. Without a channel
    (run outside a worker) every call is a no-op, so agents stay runnable."""

    def __init__(self, fd: int | None = None, context: dict[str, Any] | None = None) -> None:
        self._stream = os.fdopen(fd, "w", encoding="utf-8", buffering=1, closefd=True) if fd is not None else None
        self.context: dict[str, Any] = context or {}

    @property
    def connected(self) -> bool:
        return self._stream is not None

    @property
    def answer(self) -> str | None:
        return self.context.get("answer")

    @property
    def conversation_id(self) -> str | None:
        return self.context.get("conversation_id")

    def send(self, event_type: str, **fields: Any) -> None:
        if self._stream is None:
            return
        self._stream.write(encode(event_type, **fields) + "\n")
        self._stream.flush()

    def progress(self, message: str, percent: float | None = None) -> None:
        self.send(PROGRESS, message=message, percent=percent)

    def usage(self, *, input_tokens: int = 0, output_tokens: int = 0, cached_input_tokens: int = 0,
              cost_usd: float = 0.0, model: str = "", cumulative: bool = False) -> None:
        self.send(USAGE, input_tokens=input_tokens, output_tokens=output_tokens,
                  cached_input_tokens=cached_input_tokens, cost_usd=cost_usd, model=model,
                  cumulative=cumulative or None)

    def artifact(self, path: str, description: str = "") -> None:
        self.send(ARTIFACT, path=path, description=description or None)

    def needs_input(self, question: str, choices: list[str] | None = None) -> None:
        self.send(NEEDS_INPUT, question=question, choices=list(choices) if choices else None)

    def conversation(self, conversation_id: str) -> None:
        self.send(CONVERSATION, id=conversation_id)

    def result(self, status: str, summary: str = "", *, error_code: str = "", error_message: str = "",
               question: str = "", choices: list[str] | None = None) -> None:
        error = {"code": error_code, "message": error_message} if (error_code or error_message) else None
        self.send(RESULT, status=status, summary=summary, error=error, question=question or None,
                  choices=list(choices) if choices else None)

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.close()
            finally:
                self._stream = None


def load_context(path: str | None = None) -> dict[str, Any]:
    path = path if path is not None else os.environ.get(CONTEXT_FILE_ENV, "")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def connect(environ: dict[str, str] | None = None) -> Agent:
    """The channel named by VP_AGENT_EVENTS_FD (a no-op Agent when unset or unusable)."""
    env = os.environ if environ is None else environ
    context = load_context(env.get(CONTEXT_FILE_ENV, ""))
    raw = env.get(EVENTS_FD_ENV, "").strip()
    if not raw.isdigit():
        return Agent(None, context)
    try:
        os.fstat(int(raw))
    except OSError:
        return Agent(None, context)
    return Agent(int(raw), context)
