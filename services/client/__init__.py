"""Python client of VP Mission Control.

    async with MissionControlClient("127.0.0.1:50052") as mc:
        mission, route, deduplicated = await mc.dispatch("vp.coder.primary", "code", "fix the bug")
        final = await mc.wait(mission.envelope.mission_id, timeout=600)

Failures raise ClientError (code, reason, field_violations). Transient errors
(UNAVAILABLE, DEADLINE_EXCEEDED) are retried for calls safe to repeat.
"""

from services.client.artifacts import ArtifactFile
from services.client.errors import ClientError
from services.client.mission_control import MissionControlClient, new_idempotency_key
from services.client.retry import NO_RETRY, RetryPolicy
from services.client.sessions import SessionsClient
from services.client.states import (
    TERMINAL_STATES,
    is_terminal,
    mission_state_name,
    parse_mission_state,
    parse_session_status,
    session_status_name,
)
from services.client.sync import SyncMissionControlClient, SyncSessionsClient

__all__ = [
    "ArtifactFile",
    "ClientError",
    "MissionControlClient",
    "NO_RETRY",
    "RetryPolicy",
    "SessionsClient",
    "SyncMissionControlClient",
    "SyncSessionsClient",
    "TERMINAL_STATES",
    "is_terminal",
    "mission_state_name",
    "new_idempotency_key",
    "parse_mission_state",
    "parse_session_status",
    "session_status_name",
]
