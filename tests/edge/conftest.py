from __future__ import annotations

import pytest

from tests.support.e2e import E2EStack


@pytest.fixture
def processes(db_url, tmp_path):
    """Registry and dispatcher as real processes on db_url (both backends)."""
    stack = E2EStack(db_url, tmp_path)
    (tmp_path / "handoff").mkdir()
    stack.start_registry()
    stack.start_dispatcher()
    yield stack
    stack.stop()
