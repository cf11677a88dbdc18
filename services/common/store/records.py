"""Plain records the store reads and writes. Services work with these, never
with ORM rows or SQL. Every datetime is timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.common.states import MissionState, SessionStatus


@dataclass
class SessionRecord:
    vp_id: str
    session_id: str
    workspace_dir: str
    status: SessionStatus
    runtime_id: str = ""
    lease_owner: str = ""
    lease_epoch: int = 0
    lease_expires_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    last_error: str = ""
    # When the session entered its current status (sweeper grace is measured from it).
    status_changed_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The agent conversation the VP continues next (agent protocol v1 §8); "" when none.
    conversation_agent: str = ""
    conversation_id: str = ""
    conversation_mission_id: str = ""
    conversation_updated_at: datetime | None = None


@dataclass
class MissionRecord:
    mission_id: str
    vp_id: str
    mission_type: str
    objective: str
    state: MissionState
    # The full MissionEnvelope as a JSON-ready dict (protobuf JSON mapping).
    envelope: dict[str, Any]
    # Lane that executes the result of record; "" when handed back to the caller.
    lane: str = ""
    idempotency_key: str | None = None
    # Hash of the canonical envelope, to tell a replay from a conflicting reuse of a key.
    envelope_hash: str = ""
    priority: int = 0
    attempt: int = 0
    max_attempts: int = 1
    # The vp.v1.Route of the current routing decision (protobuf JSON mapping).
    route: dict[str, Any] = field(default_factory=dict)
    # attempt - attempt_base attempts were made on the current lane: a re-route
    # to a fallback lane starts the attempt budget afresh.
    attempt_base: int = 0
    # How long the current attempt waited in the queue; set at assignment.
    queue_wait_seconds: float | None = None
    # The envelope's absolute deadline, if any (deadline below is the current attempt's).
    mission_deadline: datetime | None = None
    # The envelope's per-attempt budget.max_duration, if any.
    max_duration_seconds: float | None = None
    result_ref: str = ""
    error_code: str = ""
    error_message: str = ""
    summary: str = ""
    source_session_id: str = ""
    deadline: datetime | None = None
    run_id: str = ""
    session_id: str = ""
    lease_epoch: int = 0
    worker_owner: str = ""
    cancel_requested: bool = False
    cancel_reason: str = ""
    shadow_of_mission_id: str = ""
    shadow: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    # Agent protocol v1 (specs/agent-protocol-v1.md): usage totals over every run,
    # why the mission is (or was last) blocked and its question, the latest answer,
    # the agent conversation, limits raised by ResumeMission (None: the envelope's).
    usage_input_tokens: int = 0
    usage_output_tokens: int = 0
    usage_cached_input_tokens: int = 0
    usage_cost_usd: float = 0.0
    usage_model: str = ""
    blocked_reason: str = ""
    question: str = ""
    question_choices: list[str] = field(default_factory=list)
    answer: str = ""
    conversation_agent: str = ""
    conversation_id: str = ""
    budget_max_tokens: int | None = None
    budget_max_cost_usd: float | None = None
    resume_count: int = 0


@dataclass
class EventRecord:
    event_id: int
    mission_id: str
    vp_id: str
    event_type: str
    payload: dict[str, Any]
    emitted_at: datetime


@dataclass
class NewEvent:
    """An event to append; the store assigns event_id."""

    event_type: str
    vp_id: str
    emitted_at: datetime
    mission_id: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


#: FlagsRecord.scope of the one global row (the kill switch).
GLOBAL_SCOPE = "*"


@dataclass
class FlagsRecord:
    """Routing flags of one lane (scope = its vp_id), or the global row
    (scope GLOBAL_SCOPE: only kill_switch counts). Quotas None mean the
    dispatcher's configured default."""

    scope: str
    kill_switch: bool = False
    enabled: bool = True
    shadow: bool = False
    force_fallback: bool = False
    max_in_flight: int | None = None
    max_queue_depth: int | None = None
    # Bumped by every change: replicas compare it to know their view is current.
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str = ""
