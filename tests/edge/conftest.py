from __future__ import annotations

import pytest

from tests.support.e2e import E2EStack


def _stack(db_url, tmp_path, *, secure: bool):
    stack = E2EStack(db_url, tmp_path, secure=secure)
    (tmp_path / "handoff").mkdir()
    stack.start_registry()
    stack.start_dispatcher()
    return stack


@pytest.fixture
def processes(db_url, tmp_path):
    """Registry and dispatcher as real processes on db_url (both backends), secure."""
    stack = _stack(db_url, tmp_path, secure=True)
    yield stack
    stack.stop()


@pytest.fixture
def insecure_processes(db_url, tmp_path):
    """The same, explicitly insecure: every request reaches the servicers, so the fuzz
    probes the services rather than the gate (the matrix tests cover the gate)."""
    stack = _stack(db_url, tmp_path, secure=False)
    yield stack
    stack.stop()
