"""typed mission fields: attempt_base, queue_wait_seconds, mission_deadline,
max_duration_seconds (formerly keys of the route JSON or parsed from the envelope)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
NEW_COLUMNS = ("attempt_base", "queue_wait_seconds", "mission_deadline", "max_duration_seconds")


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _missions(*names: str) -> sa.TableClause:
    types = {"mission_id": sa.String(), "route": _json(), "envelope": _json(), "attempt_base": sa.Integer(),
             "queue_wait_seconds": sa.Float(), "mission_deadline": TS, "max_duration_seconds": sa.Float()}
    return sa.table("vp_missions", *(sa.column(name, types[name]) for name in names))


def _deadline(envelope: dict, sqlite: bool) -> datetime | None:
    raw = envelope.get("deadline")
    if not raw:
        return None
    value = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)
    # The store keeps SQLite timestamps as naive UTC (services/common/store/types.py).
    return value.replace(tzinfo=None) if sqlite else value


def _max_duration(envelope: dict) -> float | None:
    raw = (envelope.get("budget") or {}).get("max_duration")
    return float(raw.rstrip("s")) if raw else None


def upgrade() -> None:
    with op.batch_alter_table("vp_missions") as batch:
        batch.add_column(sa.Column("attempt_base", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("queue_wait_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("mission_deadline", TS, nullable=True))
        batch.add_column(sa.Column("max_duration_seconds", sa.Float(), nullable=True))
    conn = op.get_bind()
    sqlite = conn.dialect.name == "sqlite"
    table = _missions("mission_id", "route", "envelope", *NEW_COLUMNS)
    rows = conn.execute(sa.select(table.c.mission_id, table.c.route, table.c.envelope)).all()
    for mission_id, route, envelope in rows:
        route, envelope = route or {}, envelope or {}
        wait = route.get("queue_wait_seconds")
        conn.execute(table.update().where(table.c.mission_id == mission_id).values(
            route=route.get("proto", {}), attempt_base=int(route.get("attempt_base", 0)),
            queue_wait_seconds=None if wait is None else float(wait),
            mission_deadline=_deadline(envelope, sqlite), max_duration_seconds=_max_duration(envelope)))


def downgrade() -> None:
    conn = op.get_bind()
    table = _missions("mission_id", "route", "attempt_base", "queue_wait_seconds")
    rows = conn.execute(sa.select(table.c.mission_id, table.c.route, table.c.attempt_base,
                                  table.c.queue_wait_seconds)).all()
    for mission_id, route, attempt_base, wait in rows:
        bag = {"proto": route or {}, "attempt_base": attempt_base}
        if wait is not None:
            bag["queue_wait_seconds"] = wait
        conn.execute(table.update().where(table.c.mission_id == mission_id).values(route=bag))
    with op.batch_alter_table("vp_missions") as batch:
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
