"""agent protocol v1: usage totals, blocked reason and question, answer,
conversation and raised budget on missions; the agent conversation on sessions

Revision ID: 0004_agent_protocol
Revises: 0003_routing_flags
Create Date: 2026-11-30 12:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_agent_protocol"
down_revision: str | None = "0003_routing_flags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported, so this revision keeps creating the same columns.
TS = sa.DateTime(timezone=True)
MISSION_INTEGERS = ("usage_input_tokens", "usage_output_tokens", "usage_cached_input_tokens", "resume_count")
MISSION_TEXTS = ("usage_model", "blocked_reason", "question", "answer", "conversation_agent", "conversation_id")
SESSION_STRINGS = ("conversation_agent", "conversation_id", "conversation_mission_id")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Every new column is nullable: existing rows read as "no usage, never blocked".
    with op.batch_alter_table("vp_missions") as batch:
        for name in MISSION_INTEGERS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("usage_cost_usd", sa.Float(), nullable=True))
        for name in MISSION_TEXTS:
            batch.add_column(sa.Column(name, sa.Text(), nullable=True))
        batch.add_column(sa.Column("question_choices", _json(), nullable=True))
        batch.add_column(sa.Column("budget_max_tokens", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("budget_max_cost_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("vp_sessions") as batch:
        for name in SESSION_STRINGS:
            batch.add_column(sa.Column(name, sa.String(), nullable=True))
        batch.add_column(sa.Column("conversation_updated_at", TS, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("vp_sessions") as batch:
        for name in (*SESSION_STRINGS, "conversation_updated_at"):
            batch.drop_column(name)
    with op.batch_alter_table("vp_missions") as batch:
        for name in (*MISSION_INTEGERS, "usage_cost_usd", *MISSION_TEXTS, "question_choices", "budget_max_tokens",
                     "budget_max_cost_usd"):
            batch.drop_column(name)
