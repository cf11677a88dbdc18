from __future__ import annotations

import pytest

from tests.ops.ops_support import OpsStack


@pytest.fixture(scope="session")
def ops_stack(tmp_path_factory):
    """The services as real processes with /metrics, after one delegated and one
    fallback mission (so the labelled series of both routes exist). Shared by the
    ops tests: starting it is most of their time."""
    stack = OpsStack(tmp_path_factory.mktemp("ops-stack"))
    try:
        stack.start()
        stack.run_missions(delegated=1, fallback=1)
        yield stack
    finally:
        stack.stop()
