"""Records for store tests, complete enough that a dropped column would show."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.common.states import MissionState, SessionStatus
from services.common.store.records import MissionRecord, SessionRecord

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def session(vp_id: str, status: SessionStatus = SessionStatus.ACTIVE, **overrides) -> SessionRecord:
    values = dict(
        vp_id=vp_id,
        session_id=f"sess-{vp_id}",
        workspace_dir=f"/work/{vp_id}",
        status=status,
        runtime_id="rt-1",
        lease_owner="worker-a",
        lease_epoch=3,
        lease_expires_at=at(30),
        last_heartbeat_at=at(1),
        last_error="",
        status_changed_at=at(0),
        created_at=at(0),
        updated_at=at(1),
    )
    values.update(overrides)
    return SessionRecord(**values)


def mission(mission_id: str, **overrides) -> MissionRecord:
    values = dict(
        mission_id=mission_id,
        vp_id="vp-1",
        mission_type="code",
        objective=f"do {mission_id}",
        state=MissionState.QUEUED,
        envelope={"missionId": mission_id, "inputs": {"files": ["a.py", "b.py"], "depth": 2}, "ok": True},
        lane="lane-a",
        idempotency_key=None,
        envelope_hash=f"h-{mission_id}",
        priority=0,
        attempt=0,
        max_attempts=3,
        route={"lane": "lane-a", "provenance": "delegated to lane-a"},
        attempt_base=1,
        queue_wait_seconds=0.25,
        mission_deadline=at(3600),
        max_duration_seconds=90.5,
        result_ref="",
        error_code="",
        error_message="",
        summary="",
        source_session_id="src-1",
        deadline=None,
        run_id="",
        session_id="",
        lease_epoch=0,
        worker_owner="",
        cancel_requested=False,
        cancel_reason="",
        shadow_of_mission_id="",
        shadow={},
        created_at=at(0),
        updated_at=at(0),
        started_at=None,
        completed_at=None,
    )
    values.update(overrides)
    return MissionRecord(**values)
