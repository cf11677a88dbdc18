from __future__ import annotations

import pytest

from tests.support.e2e import E2EStack


@pytest.fixture
def e2e(sqlite_url, tmp_path):
    stack = E2EStack(sqlite_url, tmp_path)
    (tmp_path / "handoff").mkdir()
    stack.start_registry()
    stack.start_dispatcher()
    yield stack
    stack.stop()
