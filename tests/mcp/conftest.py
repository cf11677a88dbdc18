from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.mcp.support import McpStack

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Registry, dispatcher and two workers as real processes on port 0 (SQLite):
    vp.general.primary runs the demo executor, vp.coder.primary the scripted
    agent of tests/mcp/agent.py. Shared by a module's tests; each test uses
    its own missions."""
    root = tmp_path_factory.mktemp("mcp-stack")
    running = McpStack.start(root, pythonpath=str(REPO_ROOT))
    yield running
    running.stop()
