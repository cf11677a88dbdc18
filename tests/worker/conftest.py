from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from services.common.contracts.vp.v1 import mission_pb2
from services.worker.executors.base import MissionRun
from worker_test_helpers import ProgressRecorder

_ids = itertools.count(1)


@pytest.fixture
def progress() -> ProgressRecorder:
    return ProgressRecorder()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws


@pytest.fixture
def make_run(workspace: Path):
    def make(objective: str = "do the thing", *, mission_id: str | None = None, max_duration: float | None = None,
             target_path: str = "", attempt: int = 1) -> MissionRun:
        mission_id = mission_id or f"m-test-{next(_ids)}"
        envelope = mission_pb2.MissionEnvelope(
            schema_version=1, mission_id=mission_id, vp_id="vp.coder.primary", objective=objective,
            target_path=target_path,
        )
        if max_duration is not None:
            envelope.budget.max_duration.FromNanoseconds(int(max_duration * 1e9))
        return MissionRun(
            mission_id=mission_id,
            attempt=attempt,
            run_id=f"r-{mission_id}",
            envelope=envelope,
            workspace_dir=workspace,
            mission_dir=workspace / "missions" / mission_id,
            vp_id="vp.coder.primary",
        )

    return make
