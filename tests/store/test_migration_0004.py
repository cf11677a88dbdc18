"""0004 adds the agent protocol columns: rows stored before it read as "no usage,
never blocked, no conversation"; downgrade drops the columns again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from services.common.store import SqlStore
from services.common.store.engine import create_engine_for
from services.common.store.migrate import alembic_config, upgrade
from tests.store.store_factories import at
from tests.store.test_migration_0002 import _insert_0001_mission, _run


def _insert_0001_session(conn) -> None:
    sqlite = conn.dialect.name == "sqlite"
    now = at(0).replace(tzinfo=None) if sqlite else at(0)
    table = sa.table("vp_sessions", *(sa.column(c) for c in (
        "vp_id", "session_id", "workspace_dir", "status", "runtime_id", "lease_owner", "lease_epoch", "last_error",
        "created_at", "updated_at")))
    conn.execute(table.insert().values(vp_id="vp.coder.primary", session_id="s-1", workspace_dir="/ws", status="idle",
                                       runtime_id="", lease_owner="", lease_epoch=1, last_error="", created_at=now,
                                       updated_at=now))


def test_0004_reads_old_rows_as_empty_and_downgrades(db_url):
    upgrade(db_url, "0001")
    _run(db_url, lambda conn: (_insert_0001_mission(conn, "m-1", {"proto": {}}, {"mission_id": "m-1"}),
                               _insert_0001_session(conn)))
    upgrade(db_url)
    with SqlStore(db_url, migrate=False) as store:
        mission, session = store.read(lambda tx: (tx.get_mission("m-1"), tx.get_session("vp.coder.primary")))
    assert (mission.usage_input_tokens, mission.usage_output_tokens, mission.usage_cost_usd) == (0, 0, 0.0)
    assert mission.blocked_reason == "" and mission.question == "" and mission.question_choices == []
    assert mission.budget_max_tokens is None and mission.resume_count == 0 and mission.conversation_id == ""
    assert session.conversation_id == "" and session.conversation_updated_at is None

    _run(db_url, lambda conn: command.downgrade(alembic_config(conn), "0003_routing_flags"))
    engine = create_engine_for(db_url)
    try:
        with engine.connect() as conn:
            missions = {c["name"] for c in sa.inspect(conn).get_columns("vp_missions")}
            sessions = {c["name"] for c in sa.inspect(conn).get_columns("vp_sessions")}
    finally:
        engine.dispose()
    assert "usage_input_tokens" not in missions and "answer" not in missions
    assert "conversation_id" not in sessions
