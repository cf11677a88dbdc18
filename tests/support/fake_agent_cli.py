"""A stand-in for the Claude Code and Codex CLIs: replays a recorded transcript
in the CLI's own JSON-lines format and checks the argv it was given.

It acts as ``claude`` when called like ``-p --output-format stream-json
--verbose ...`` and as ``codex`` when called like ``exec --json ...``; any
other argv is an error (exit 98). The transcript is
``<FAKE_AGENT_TRANSCRIPTS>/<claude|codex>/<scenario>[.resume].jsonl``, where
the scenario is named in the prompt (``scenario:<name>``), or, on a resume
whose prompt is only an answer, is the one whose transcript started the
conversation; ``.resume`` is used when the CLI was asked to resume. Each call is appended to
``FAKE_AGENT_LOG`` (JSON lines: argv, prompt, resume id).

Lines with a ``"__fake__"`` key are directives, not output:
``expect_resume`` (``id``), ``expect_prompt_contains`` (``text``), ``sleep``
(``seconds``), ``hang``, ``raw`` (``text`` written as is, no newline added),
``exit`` (``code``). A failed expectation exits 97 with the reason on stderr.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLAUDE_PREFIX = ["-p", "--output-format", "stream-json", "--verbose"]


def fail(code: int, why: str) -> None:
    print(f"fake agent cli: {why}", file=sys.stderr, flush=True)
    sys.exit(code)


def parse(argv: list[str]) -> tuple[str, str, str]:
    """(flavor, prompt, resume id) from the argv, or exit 98."""
    if argv[:4] == CLAUDE_PREFIX:
        resume = ""
        if "--resume" in argv:
            i = argv.index("--resume")
            resume = argv[i + 1] if i + 1 < len(argv) else fail(98, "--resume without an id")
        return "claude", argv[-1], resume
    if argv[:2] == ["exec", "--json"]:
        resume = ""
        if "resume" in argv[2:]:
            i = argv.index("resume", 2)
            if i + 2 != len(argv) - 1:
                fail(98, "exec resume needs exactly <thread_id> <prompt> after it")
            resume = argv[i + 1]
        return "codex", argv[-1], resume
    fail(98, f"unexpected argv: {argv!r}")
    raise AssertionError


def scenario_of(root: Path, conversation_id: str) -> str:
    """The scenario whose first-run transcript started the conversation being resumed."""
    for path in sorted(root.glob("*.jsonl")):
        if not path.name.endswith(".resume.jsonl") and conversation_id in path.read_text(encoding="utf-8"):
            return path.name.removesuffix(".jsonl")
    fail(98, f"no transcript started conversation {conversation_id!r}")
    raise AssertionError


def main() -> None:
    argv = sys.argv[1:]
    flavor, prompt, resume = parse(argv)
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"flavor": flavor, "argv": argv, "prompt": prompt, "resume": resume,
                                 "pid": os.getpid()}) + "\n")
    root = Path(os.environ.get("FAKE_AGENT_TRANSCRIPTS", HERE / "agent_transcripts")) / flavor
    match = re.search(r"scenario:([A-Za-z0-9_-]+)", prompt)
    if match:
        scenario = match.group(1)
    elif resume:
        scenario = scenario_of(root, resume)
    else:
        fail(98, f"no scenario:<name> in the prompt {prompt[:200]!r}")
    path = root / f"{scenario}{'.resume' if resume else ''}.jsonl"
    if not path.is_file():
        fail(98, f"no transcript {path}")
    out = sys.stdout
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        obj = json.loads(raw)
        directive = obj.get("__fake__") if isinstance(obj, dict) else None
        if directive is None:
            out.write(raw + "\n")
            out.flush()
        elif directive == "expect_resume":
            if resume != obj["id"]:
                fail(97, f"expected to resume {obj['id']!r}, got {resume!r}")
        elif directive == "expect_prompt_contains":
            if obj["text"] not in prompt:
                fail(97, f"expected {obj['text']!r} in the prompt {prompt!r}")
        elif directive == "sleep":
            time.sleep(float(obj["seconds"]))
        elif directive == "hang":
            time.sleep(3600)
        elif directive == "raw":
            out.write(obj["text"])
            out.flush()
        elif directive == "exit":
            sys.exit(int(obj["code"]))
    sys.exit(0)


if __name__ == "__main__":
    main()
