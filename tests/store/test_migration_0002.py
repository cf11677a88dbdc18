"""0002 moves the route JSON bag's keys and the envelope's deadline and budget
into typed columns, for missions stored before it ran; and back on downgrade."""

from __future__ import annotations

import json

from datetime import datetime, timezone

import sqlalchemy as sa
import sqlalchemy.dialects.postgresql
from alembic import command

from services.common.store import SqlStore
from services.common.store.engine import create_engine_for
from services.common.store.migrate import alembic_config, migration_connection, upgrade
from tests.store.store_factories import at

ROUTE = {"decision": "ROUTE_DECISION_FALLBACK", "lane": "vp.general.primary", "provenance": "fallback"}


def _run(db_url: str, fn) -> None:
    engine = create_engine_for(db_url)
    try:
        with migration_connection(engine) as conn:
            fn(conn)
    finally:
        engine.dispose()


def _insert_0001_mission(conn, mission_id: str, route: dict, envelope: dict) -> None:
    sqlite = conn.dialect.name == "sqlite"
    now = at(0).replace(tzinfo=None) if sqlite else at(0)
    json_col = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
    typed = {"envelope": json_col, "route": json_col, "shadow": json_col}
    table = sa.table("vp_missions", *(sa.column(c, typed.get(c)) for c in (
        "mission_id", "vp_id", "mission_type", "objective", "state", "envelope", "lane", "envelope_hash", "priority",
        "attempt", "max_attempts", "route", "result_ref", "error_code", "error_message", "summary",
        "source_session_id", "run_id", "session_id", "lease_epoch", "worker_owner", "cancel_requested",
        "cancel_reason", "shadow_of_mission_id", "shadow", "created_at", "updated_at")))
    statement = table.insert().values(
        mission_id=mission_id, vp_id="vp.coder.primary", mission_type="code", objective="o", state="running",
        lane="vp.general.primary", envelope_hash="h", priority=0, attempt=3, max_attempts=2, result_ref="",
        error_code="", error_message="", summary="", source_session_id="", run_id="r", session_id="s",
        lease_epoch=1, worker_owner="w", cancel_requested=False, cancel_reason="", shadow_of_mission_id="",
        created_at=now, updated_at=now)
    conn.execute(statement.values(envelope=envelope, route=route, shadow={}))


def test_0002_backfills_typed_fields_and_downgrade_restores_the_bag(db_url):
    upgrade(db_url, "0001")
    envelope = {"mission_id": "m-1", "deadline": "2026-03-01T13:00:00.123456Z", "budget": {"max_duration": "90.5s"}}
    bag = {"proto": ROUTE, "attempt_base": 2, "queue_wait_seconds": 0.25}
    _run(db_url, lambda conn: (_insert_0001_mission(conn, "m-1", bag, envelope),
                               _insert_0001_mission(conn, "m-2", {"proto": ROUTE}, {"mission_id": "m-2"})))
    upgrade(db_url)
    with SqlStore(db_url, migrate=False) as store:
        first, second = store.read(lambda tx: [tx.get_mission("m-1"), tx.get_mission("m-2")])
    assert first.route == ROUTE and first.attempt_base == 2 and first.queue_wait_seconds == 0.25
    assert first.mission_deadline == datetime(2026, 3, 1, 13, 0, 0, 123456, tzinfo=timezone.utc)
    assert first.max_duration_seconds == 90.5
    assert second.route == ROUTE and second.attempt_base == 0
    assert second.queue_wait_seconds is None and second.mission_deadline is None
    assert second.max_duration_seconds is None

    _run(db_url, lambda conn: command.downgrade(alembic_config(conn), "0001"))
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            routes = dict(conn.execute(sa.text("SELECT mission_id, route FROM vp_missions")).all())
            columns = {c["name"] for c in sa.inspect(conn).get_columns("vp_missions")}
    finally:
        engine.dispose()
    routes = {k: v if isinstance(v, dict) else json.loads(v) for k, v in routes.items()}
    assert routes["m-1"] == bag
    assert routes["m-2"] == {"proto": ROUTE, "attempt_base": 0}
    assert "attempt_base" not in columns
