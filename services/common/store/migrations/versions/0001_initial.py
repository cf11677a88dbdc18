"""initial store schema: sessions, missions, events, event cursors

Revision ID: 0001
Revises:
Create Date: 2026-01-01 00:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types are spelled out rather than imported from the package so this
# revision keeps creating the same schema when the package's types evolve.
TS = sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vp_sessions",
        sa.Column("vp_id", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("workspace_dir", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("runtime_id", sa.String(), nullable=False),
        sa.Column("lease_owner", sa.String(), nullable=False),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("last_heartbeat_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("status_changed_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("vp_id", name="pk_vp_sessions"),
    )
    op.create_index("ix_vp_sessions_status_vp_id", "vp_sessions", ["status", "vp_id"])

    op.create_table(
        "vp_missions",
        sa.Column("mission_id", sa.String(), nullable=False),
        sa.Column("vp_id", sa.String(), nullable=False),
        sa.Column("mission_type", sa.String(), nullable=False),
        sa.Column("objective", sa.Text(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("envelope", _json(), nullable=False),
        sa.Column("lane", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=True),
        sa.Column("envelope_hash", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("route", _json(), nullable=False),
        sa.Column("result_ref", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("source_session_id", sa.String(), nullable=False),
        sa.Column("deadline", TS, nullable=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("lease_epoch", sa.BigInteger(), nullable=False),
        sa.Column("worker_owner", sa.String(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("shadow_of_mission_id", sa.String(), nullable=False),
        sa.Column("shadow", _json(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("mission_id", name="pk_vp_missions"),
        sa.UniqueConstraint("idempotency_key", name="uq_vp_missions_idempotency_key"),
    )
    op.create_index(
        "ix_vp_missions_queue",
        "vp_missions",
        ["lane", "state", sa.literal_column("priority DESC"), "created_at", "mission_id"],
    )
    op.create_index("ix_vp_missions_created", "vp_missions", ["created_at", "mission_id"])
    op.create_index("ix_vp_missions_vp", "vp_missions", ["vp_id", "created_at", "mission_id"])
    op.create_index("ix_vp_missions_state", "vp_missions", ["state", "created_at", "mission_id"])
    op.create_index(
        "ix_vp_missions_source_session", "vp_missions", ["source_session_id", "created_at", "mission_id"]
    )
    op.create_index("ix_vp_missions_deadline", "vp_missions", ["state", "deadline"])

    op.create_table(
        "vp_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("mission_id", sa.String(), nullable=False),
        sa.Column("vp_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("emitted_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_vp_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_vp_events_mission_id_event_id", "vp_events", ["mission_id", "event_id"])
    op.create_index("ix_vp_events_vp_id_event_id", "vp_events", ["vp_id", "event_id"])

    op.create_table(
        "vp_event_cursors",
        sa.Column("consumer", sa.String(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("consumer", name="pk_vp_event_cursors"),
    )


def downgrade() -> None:
    op.drop_table("vp_event_cursors")
    op.drop_table("vp_events")
    op.drop_table("vp_missions")
    op.drop_table("vp_sessions")
