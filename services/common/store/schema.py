"""The tables behind the store. migrations/versions must create exactly this
(tests/store compares the migrated database against it).

Enums are stored as their string values so rows stay readable in psql/sqlite3
and adding a state needs no type migration. No foreign keys: a mission may be
queued for a vp_id before that VP ever opens a session.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.common.store.types import UTCDateTime, json_type

# Deterministic constraint names: the store recognises an idempotency-key
# violation and a primary-key race by name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

IDEMPOTENCY_CONSTRAINT = "uq_vp_missions_idempotency_key"

# A BIGINT primary key is not a rowid alias on SQLite; INTEGER is, and only the
# rowid alias gets AUTOINCREMENT (ids never reused, so cursors stay valid).
EventId = BigInteger().with_variant(Integer(), "sqlite")

#: Agent protocol v1 columns of vp_missions (migration 0004_agent_protocol).
MISSION_AGENT_INTEGERS = ("usage_input_tokens", "usage_output_tokens", "usage_cached_input_tokens", "resume_count")
MISSION_AGENT_TEXTS = ("usage_model", "blocked_reason", "question", "answer", "conversation_agent", "conversation_id")

vp_sessions = Table(
    "vp_sessions",
    metadata,
    Column("vp_id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("workspace_dir", Text, nullable=False),
    Column("status", String(32), nullable=False),
    Column("runtime_id", String, nullable=False),
    Column("lease_owner", String, nullable=False),
    Column("lease_epoch", BigInteger, nullable=False),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("last_heartbeat_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Agent protocol v1 §8: NULL (no conversation) on rows written before 0004_agent_protocol.
    Column("conversation_agent", String, nullable=True),
    Column("conversation_id", String, nullable=True),
    Column("conversation_mission_id", String, nullable=True),
    Column("conversation_updated_at", UTCDateTime, nullable=True),
    Index(None, "status", "vp_id"),
)

vp_missions = Table(
    "vp_missions",
    metadata,
    Column("mission_id", String, primary_key=True),
    Column("vp_id", String, nullable=False),
    Column("mission_type", String, nullable=False),
    Column("objective", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("envelope", json_type(), nullable=False),
    Column("lane", String, nullable=False),
    Column("idempotency_key", String, nullable=True),
    Column("envelope_hash", String, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("route", json_type(), nullable=False),
    Column("attempt_base", Integer, nullable=False, server_default="0"),
    Column("queue_wait_seconds", Float, nullable=True),
    Column("mission_deadline", UTCDateTime, nullable=True),
    Column("max_duration_seconds", Float, nullable=True),
    Column("result_ref", Text, nullable=False),
    Column("error_code", String, nullable=False),
    Column("error_message", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("source_session_id", String, nullable=False),
    Column("deadline", UTCDateTime, nullable=True),
    Column("run_id", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("lease_epoch", BigInteger, nullable=False),
    Column("worker_owner", String, nullable=False),
    Column("cancel_requested", Boolean, nullable=False),
    Column("cancel_reason", Text, nullable=False),
    Column("shadow_of_mission_id", String, nullable=False),
    Column("shadow", json_type(), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    # Agent protocol v1 (0004_agent_protocol): NULL on rows written before it, read as 0 / "" / [].
    *(Column(name, BigInteger, nullable=True) for name in MISSION_AGENT_INTEGERS),
    Column("usage_cost_usd", Float, nullable=True),
    *(Column(name, Text, nullable=True) for name in MISSION_AGENT_TEXTS),
    Column("question_choices", json_type(), nullable=True),
    Column("budget_max_tokens", BigInteger, nullable=True),
    Column("budget_max_cost_usd", Float, nullable=True),
    UniqueConstraint("idempotency_key", name=IDEMPOTENCY_CONSTRAINT),
)

# The dispatch queue: equality on (lane, state) then already in next_queued's
# order, so picking the next missions is an index range scan with no sort.
Index(
    "ix_vp_missions_queue",
    vp_missions.c.lane,
    vp_missions.c.state,
    vp_missions.c.priority.desc(),
    vp_missions.c.created_at,
    vp_missions.c.mission_id,
)
# Listing order (created_at, mission_id) after each supported equality filter.
Index("ix_vp_missions_created", vp_missions.c.created_at, vp_missions.c.mission_id)
Index("ix_vp_missions_vp", vp_missions.c.vp_id, vp_missions.c.created_at, vp_missions.c.mission_id)
Index("ix_vp_missions_state", vp_missions.c.state, vp_missions.c.created_at, vp_missions.c.mission_id)
Index(
    "ix_vp_missions_source_session",
    vp_missions.c.source_session_id,
    vp_missions.c.created_at,
    vp_missions.c.mission_id,
)
Index("ix_vp_missions_deadline", vp_missions.c.state, vp_missions.c.deadline)

vp_events = Table(
    "vp_events",
    metadata,
    Column("event_id", EventId, primary_key=True, autoincrement=True),
    Column("mission_id", String, nullable=False),
    Column("vp_id", String, nullable=False),
    Column("event_type", String, nullable=False),
    Column("payload", json_type(), nullable=False),
    Column("emitted_at", UTCDateTime, nullable=False),
    Index(None, "mission_id", "event_id"),
    Index(None, "vp_id", "event_id"),
    sqlite_autoincrement=True,
)

vp_event_cursors = Table(
    "vp_event_cursors",
    metadata,
    Column("consumer", String, primary_key=True),
    Column("event_id", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Runtime routing flags (dispatcher): one row per lane plus the global "*" row.
vp_routing_flags = Table(
    "vp_routing_flags",
    metadata,
    Column("scope", String, primary_key=True),
    Column("kill_switch", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("shadow", Boolean, nullable=False),
    Column("force_fallback", Boolean, nullable=False),
    Column("max_in_flight", Integer, nullable=True),
    Column("max_queue_depth", Integer, nullable=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", Text, nullable=False),
)
