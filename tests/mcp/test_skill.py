"""The vp-orchestration skill parses as an Agent Skill and names only real tools;
so do the server's own texts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.mcp import convert
from services.mcp.server import INSTRUCTIONS
from services.mcp.tools import TOOL_NAMES, TOOLS

SKILL = Path(__file__).resolve().parents[2] / "skills" / "vp-orchestration" / "SKILL.md"
SEED_TOOLS = {"vp_dispatch_mission", "vp_get_mission", "vp_list_missions", "vp_wait_mission", "vp_cancel_mission",
              "vp_read_result_artifacts"}
ARGUMENTS = {name for tool in TOOLS for name in tool.input_schema["properties"]}


def named_tools(text: str) -> set[str]:
    return set(re.findall(r"\bvp_[a-z_]+\b", text)) - ARGUMENTS


def parse_skill() -> tuple[dict, str]:
    text = SKILL.read_text(encoding="utf-8")
    match = re.match(r"\A---\n(.*?)\n---\n(.*)\Z", text, re.S)
    assert match, "SKILL.md must start with YAML front matter between --- lines"
    return yaml.safe_load(match.group(1)), match.group(2)


def test_skill_front_matter_follows_the_agent_skills_format():
    meta, body = parse_skill()
    assert set(meta) >= {"name", "description"}
    assert meta["name"] == SKILL.parent.name == "vp-orchestration"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", meta["name"]) and len(meta["name"]) <= 64
    assert 0 < len(meta["description"]) <= 1024
    assert body.strip()


def test_skill_names_only_existing_tools_and_covers_the_seed_tools():
    meta, body = parse_skill()
    mentioned = named_tools(meta["description"] + body)
    assert mentioned <= set(TOOL_NAMES), f"unknown tools in the skill: {sorted(mentioned - set(TOOL_NAMES))}"
    assert SEED_TOOLS <= mentioned
    for topic in ("idempotency_key", "source", "handle_it_yourself", "INPUT_REQUIRED", "curl", "gRPC"):
        assert topic in body, topic


def test_server_texts_name_only_existing_tools():
    texts = [INSTRUCTIONS] + [tool.description for tool in TOOLS]
    texts += [str(tool.input_schema) + str(tool.output_schema) for tool in TOOLS]
    texts += [convert.__loader__.get_source(convert.__name__)]
    for text in texts:
        assert named_tools(text) <= set(TOOL_NAMES), sorted(named_tools(text) - set(TOOL_NAMES))
